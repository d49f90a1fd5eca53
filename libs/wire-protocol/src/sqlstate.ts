// SQLSTATE codes the platform sends to PostgreSQL clients.
// PostgreSQL documentation, Appendix A "PostgreSQL Error Codes"; the names follow the
// condition names there, in PascalCase. One constants module, so every refusal the router
// sends carries a deliberate code, so clients can branch on it.

/** SQLSTATE codes by condition name (PostgreSQL docs, Appendix A). */
export const SqlState = {
  SuccessfulCompletion: '00000',
  Warning: '01000',
  // Class 08 — Connection Exception
  ConnectionException: '08000',
  ConnectionDoesNotExist: '08003',
  ConnectionFailure: '08006',
  SqlClientUnableToEstablishSqlConnection: '08001',
  SqlServerRejectedEstablishmentOfSqlConnection: '08004',
  TransactionResolutionUnknown: '08007',
  ProtocolViolation: '08P01',
  // Class 0A — Feature Not Supported
  FeatureNotSupported: '0A000',
  // Class 0P — Invalid Role Specification
  InvalidRoleSpecification: '0P000',
  // Class 22 — Data Exception
  InvalidParameterValue: '22023',
  // Class 25 — Invalid Transaction State
  InvalidTransactionState: '25000',
  ReadOnlySqlTransaction: '25006',
  // Class 28 — Invalid Authorization Specification
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  // Class 3D — Invalid Catalog Name
  InvalidCatalogName: '3D000',
  // Class 42 — Syntax Error or Access Rule Violation
  InsufficientPrivilege: '42501',
  DuplicatePreparedStatement: '42P05',
  UndefinedObject: '42704',
  // Class 53 — Insufficient Resources
  InsufficientResources: '53000',
  DiskFull: '53100',
  OutOfMemory: '53200',
  TooManyConnections: '53300',
  ConfigurationLimitExceeded: '53400',
  // Class 57 — Operator Intervention
  OperatorIntervention: '57000',
  QueryCanceled: '57014',
  AdminShutdown: '57P01',
  CrashShutdown: '57P02',
  CannotConnectNow: '57P03',
  DatabaseDropped: '57P04',
  IdleSessionTimeout: '57P05',
  // Class 58 — System Error (errors external to PostgreSQL itself)
  SystemError: '58000',
  IoError: '58030',
  // Class XX — Internal Error
  InternalError: 'XX000',
  DataCorrupted: 'XX001',
  IndexCorrupted: 'XX002',
} as const;

/** One of the SQLSTATE codes in {@link SqlState}. */
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];

/** The SQLSTATE class: its first two characters (e.g. `08` for connection exceptions). */
export function sqlStateClass(code: string): string {
  return code.slice(0, 2);
}
