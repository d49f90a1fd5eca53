/** Security building blocks: secrets at rest, SCRAM verifiers, fleet PKI, tokens, roles, gRPC credentials. */
export { SecurityError, type SecurityErrorCode } from './errors.js';
export { decodeSecretKey, deriveKeyId, generateSecretKey, isSealed, KeyRing, parseKeyList, sealedKeyId, type SecretKey } from './secret-box.js';
export { addKeyToFile, checkKeyFileMode, createKeyFile, ensureKeyFile, loadKeyRing, readKeyFile, SECRET_KEY_ENV, type KeySourceOptions } from './key-source.js';
export { DEFAULT_SCRAM_ITERATIONS, isScramVerifier, parseScramVerifier, saslPrep, SCRAM_SALT_BYTES, scramVerifier, scramVerifierAsync, verifyScramPassword, type ScramVerifierParts } from './scram.js';
export { mockScramSalt, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, scramNonce, ScramServer, tlsServerEndPoint, TLS_SERVER_END_POINT, type ScramServerOptions, type ScramServerStep } from './scram-exchange.js';
export { ScramClientKeyLogin } from './scram-client.js';
export { identityOfPeerCertificate, splitSubjectAltNames, type PeerCertificateNames } from './peer-identity.js';
export { identity, IDENTITY_KINDS, identityToString, identityToUri, parseIdentity, parseIdentityUri, sameIdentity, TRUST_DOMAIN, type Identity, type IdentityKind } from './identity.js';
export {
  certificateFingerprint,
  certificateInfo,
  createCsr,
  createFleetCa,
  DEFAULT_CA_LIFETIME_MS,
  DEFAULT_LEAF_LIFETIME_MS,
  FleetCa,
  generatePrivateKey,
  identityOfCertificate,
  isExpired,
  renewalTime,
  shouldRenew,
  verifyIssuedBy,
  type CertificateInfo,
  type CertifiedKey,
  type LeafRequest,
} from './pki.js';
export {
  authorize,
  authorizeComponent,
  checkHostClaim,
  COMPONENT_SERVICES,
  describePrincipal,
  ENROLLMENT_SERVICE,
  isRole,
  METHOD_RULES,
  OPERATOR_SERVICE,
  operatorRpcName,
  ROLE_PERMISSIONS,
  roleAllows,
  ROLES,
  TENANT_SCOPED_ROLES,
  tenantIdOf,
  type ComponentPrincipal,
  type Decision,
  type MethodRule,
  type OperatorPrincipal,
  type Permission,
  type Principal,
  type Role,
  type TenantLocator,
} from './rbac.js';
export {
  authenticateOperatorToken,
  checkToken,
  hashToken,
  issueToken,
  JOIN_TOKEN_TTL,
  joinTokenCaFingerprint,
  OPERATOR_TOKEN_TTL,
  parseBearer,
  redeemJoinToken,
  tokenFormat,
  tokenLabel,
  type TokenKind,
  type TokenRecord,
  type TokenRefusal,
  type TokenRequest,
} from './tokens.js';
export {
  bearerMetadata,
  bearerToken,
  checkTlsMaterial,
  decisionError,
  insecureChannelCredentials,
  insecureServerCredentials,
  mtlsChannelCredentials,
  mtlsServerCredentials,
  peerIdentity,
  readTlsFiles,
  requirePeer,
  TlsIdentity,
  tlsChannelCredentials,
  withBearerToken,
  type TlsFiles,
  type TlsMaterial,
} from './grpc-credentials.js';
export { fetchPinnedCaCertificate } from './ca-pin.js';
export { startCertificateRenewal, type Renewal, type RenewalOptions } from './renewal.js';
export { scanForLeaks, type LeakFinding } from './leak-scan.js';
export {
  certificateOrTokenAuthenticator,
  claimedIdentityAuthenticator,
  guardService,
  IDENTITY_CLAIM_HEADER,
  identityClaimMetadata,
  principalOf,
  tenantFilterOf,
  type AccessEvent,
  type Authentication,
  type AuthenticatorOptions,
  type GuardOptions,
} from './guard.js';
export {
  connectFleetIdentity,
  fleetComponentIdentity,
  identityDirFiles,
  saveIdentityMaterial,
  type FleetComponent,
  type FleetIdentityOptions,
  type FleetLink,
} from './fleet-identity.js';
