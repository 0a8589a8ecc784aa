/** @cgn/central — accounts, auth, registries, directory (being built). */
export {};
