/**
 * Alert notifications: syslog (RFC 5424 or CEF over UDP, TCP, TLS),
 * webhooks (JSON POST with retries) and NDJSON files, each channel with its
 * own minimum risk level and rate limit.
 *
 * @module
 */
export {
  parseNotificationConfig,
  type BackoffConfig,
  type ChannelCommonConfig,
  type ChannelConfig,
  type FileChannelConfig,
  type NotificationConfigOptions,
  type RateLimitConfig,
  type SyslogChannelConfig,
  type SyslogFormat,
  type SyslogTransportKind,
  type TlsClientConfig,
  type WebhookChannelConfig,
} from './config.js';
export { Notifier, type ChannelStats, type NotifierEvent, type NotifierOptions } from './notifier.js';
export { alertText, describeNotice, noticePayload, type EventNotice, type Notice, type NotificationPayload, type SuppressedNotice } from './notice.js';
export { NotifyErrorCodes } from './sink.js';
export { formatRfc5424, severityOfRisk, type Rfc5424Options } from './rfc5424.js';
export { cefSeverity, formatCef, type CefOptions } from './cef.js';
export { NOTIFY_PRODUCT } from './syslog.js';
