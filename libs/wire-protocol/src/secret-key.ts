// Cancel secret key bounds, shared by the startup decoder (CancelRequest) and the backend
// message decoder (BackendKeyData). PostgreSQL docs, "Message Formats": BackendKeyData.

/** Secret key bounds: 4 bytes in protocol 3.0; up to 256 in 3.2. */
export const MIN_SECRET_KEY_LENGTH = 4;
/** The largest secret key protocol 3.2 allows. */
export const MAX_SECRET_KEY_LENGTH = 256;
