/**
 * grpc-js hands an IP target (127.0.0.1:7400) to TLS as the servername, which Node flags once per
 * process as DEP0123 on stderr. The coordinator's certificate is still checked against its IP SAN,
 * so the warning tells a pgsctl user nothing and would break `2>&1` scripts; every other warning stays.
 */
const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;

/** Drops DEP0123 (TLS servername is an IP address) and passes every other warning on. */
export function quietTlsServernameWarning(): void {
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
