/**
 * The roles a Bindery process can run, each an entry point in this folder. A light module of
 * its own: the command line checks `--role` against it without loading the roles' code.
 */
export const ROLES = ['web', 'build', 'github', 'culler'] as const;
export type Role = (typeof ROLES)[number];
