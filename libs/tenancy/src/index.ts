/** Placeholder so the workspace builds; replaced by the tenancy domain. */
export const TENANCY = 'tenancy';
