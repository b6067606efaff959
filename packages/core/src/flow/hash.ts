// The flow table's bucket of a TCP connection (kept out of the package's
// public API: only the table and its tests use it).

/** A 32-bit mix of one endpoint (FNV-1a over the address bytes and the port, then a finaliser). */
function endpointHash(ip: Uint8Array, port: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip[i]!, 0x01000193);
  h = Math.imul(h ^ port, 0x01000193);
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
}

/**
 * Bucket of a connection, the same from both directions (the endpoints are
 * combined symmetrically), kept to 30 bits so Map keys stay small integers.
 * The flow table chains colliding flows and tells them apart by the tuple
 * itself.
 */
export function tupleHash(srcIp: Uint8Array, srcPort: number, dstIp: Uint8Array, dstPort: number): number {
  return (endpointHash(srcIp, srcPort) ^ endpointHash(dstIp, dstPort)) & 0x3fffffff;
}
