/** Test support for the components that join the fleet: a real secure coordinator process. */
export { startSecureCoordinator, type SecureCoordinator } from './secure-coordinator.js';
