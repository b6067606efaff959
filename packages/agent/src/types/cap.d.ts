// Type declarations for the `cap` libpcap binding (CommonJS, no bundled types).
declare module 'cap' {
  import type { EventEmitter } from 'node:events';

  interface DeviceAddress {
    addr?: string;
    netmask?: string;
    broadaddr?: string;
    dstaddr?: string;
  }
  interface DeviceInfo {
    name: string;
    description?: string;
    addresses: DeviceAddress[];
    flags?: string;
  }
  interface CapStats {
    ps_recv: number;
    ps_drop: number;
    ps_ifdrop: number;
  }
  class Cap extends EventEmitter {
    constructor();
    /** Opens `device` with a BPF `filter`; returns the link type name (e.g. 'ETHERNET'). */
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    close(): void;
    setMinBytes?(n: number): void;
    send(buffer: Buffer, nbytes?: number): void;
    stats(): CapStats;
    static findDevice(ip?: string): string | undefined;
    static deviceList(): DeviceInfo[];
  }
  const decoders: unknown;
  const _default: { Cap: typeof Cap; decoders: unknown };
  export default _default;
  export { Cap, decoders, DeviceInfo, DeviceAddress, CapStats };
}
