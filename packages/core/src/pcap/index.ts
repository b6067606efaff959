// pcap and pcapng capture files: streaming readers with constant memory, and a pcap writer.
export type { CaptureInterface, CaptureStats, CaptureReader, CaptureOpenOptions, PcapWriterOptions } from './types.js';
export { openCapture, readCaptureBytes, detectCaptureFormat } from './reader.js';
export { encodePcapHeader, encodePcapRecord, PcapWriter } from './writer.js';
