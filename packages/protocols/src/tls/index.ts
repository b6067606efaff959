// What TLS shows in clear: the facts of a handshake, read from a stream that is or turned TLS.
export { TlsObserver, looksLikeTls } from './observer.js';
export { certificateFacts, type CertificateFacts } from './x509.js';
export { cipherName, versionName } from './names.js';
