/** What every pgs server shares: logger, config table, ops endpoint (health, metrics), graceful stop. */
export { createLogger, REDACT_PATHS, type Logger } from './logger.js';
export { ConfigError, helpText, loadConfig, parseDuration, type ConfigOf, type ConfigResult, type ConfigSpec, type OptionSpec } from './config.js';
export { createRegistry, startOpsServer, type HealthReport, type OpsServer } from './ops-server.js';
export { handleShutdown } from './shutdown.js';
export { runMain } from './main-runner.js';
