/**
 * The HTTP API of the audit server (node:http, JSON, OpenAPI 3.1).
 *
 * @module
 */
export { createApiServer, type ApiServerOptions, type MetricSample, type MetricsSource } from './server.js';
export { openApiDocument } from './openapi.js';
export { listenerTlsOptions, type ListenerTlsConfig } from './tls.js';
export { HttpErrorCodes, MemoryListProvider, type RuleGroupDef, type ListProvider, type ObjectProvider, type RuleGroupProvider } from './providers.js';
export {
  AccessControl,
  AccessErrorCodes,
  API_ROLES,
  ROUTE_ROLES,
  SystemLog,
  hashToken,
  newToken,
  parseApiUsers,
  type ApiRole,
  type ApiUser,
  type Caller,
  type SystemLogEntry,
} from './access.js';
