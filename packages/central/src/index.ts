/**
 * @cgn/central — the Central Service: accounts, roles, credentials (passwords, TOTP, API keys,
 * OAuth2 tokens), DService and node registries, node selection, the audit log, and the link
 * central dials to every node over mutual TLS.
 *
 * ```ts
 * import { startCentral } from '@cgn/central';
 * const central = await startCentral({ dataDir: '.cgn/central', port: 7700, bootstrapAdmin: { login: 'admin', password } });
 * console.log(central.url); // OpenAPI at `${central.url}/openapi.json`
 * ```
 */
export { startCentral, type CentralOptions, type RunningCentral } from './central.js';
export { CentralService, SYSTEM_ACCOUNT_NAME, STAFF_ROLES, type Actor, type CentralServiceOptions, type PrincipalView } from './service.js';
export { buildHttpServer, RATE_LIMIT_DEFAULTS, type HttpOptions } from './http/server.js';
export { BillingReports, NO_LEDGER_MESSAGE, fixedLedger, postgresLedger, sqliteLedger, type LedgerSource, type UsageQuery } from './billing.js';
export { buildRoutes, type RouteDef } from './http/routes.js';
export { openApiDocument } from './http/openapi.js';
export { RateLimiter, type RateLimit } from '@cgn/protocol';
export { CentralError, type CentralReason } from './errors.js';
export { systemClock, ManualClock, type Clock } from './clock.js';
export * from './store/store.js';
export { SqliteCentralStore, type SqliteCentralStoreOptions } from './store/sqlite.js';
export { PostgresCentralStore, type PostgresCentralStoreOptions } from './store/postgres.js';
export { loadCommonPasswords, defaultCommonPasswords, isCommonPassword } from './auth/common-passwords.js';
export { passwordProblems, COMMON_PASSWORD_PROBLEM, Argon2Hasher, ARGON2_DEFAULTS, ARGON2_TEST, PASSWORD_MIN, PASSWORD_MAX, type PasswordHasher, type Argon2Options } from './auth/passwords.js';
export { lockDurationMs, LOCKOUT_DEFAULTS, type LockoutPolicy } from './auth/lockout.js';
export { totpCode, matchTotp, provisioningUri, newTotpSecret } from './auth/totp.js';
export { API_KEY_PREFIX, hashApiKey, newApiKeySecret, looksLikeApiKey, scopesAllowWork, DEFAULT_KEY_SCOPES } from './auth/api-keys.js';
export { TokenIssuer, createTokenVerifier, type TokenVerifierOptions, type VerifiedToken, type AccessTokenClaims } from './auth/tokens.js';
export { GeoIp, parseIp, type GeoLocation } from './registry/geoip.js';
export { selectNodesForDApp, selectNodesForMiner, distanceKm, nodeNeed, SELECTION, type SelectableNode, type RankedNode } from './selection.js';
export { NodeLinks, type NodeLinksOptions, type LinkTls, type LinkInfo } from './link/dialer.js';
export { startTestCentral, call as testCall, TEST_ADMIN, type TestCentral, type TestClient } from './testing.js';
export { runCentralFromArgs, CENTRAL_USAGE } from './cli/central.js';
export { runCentralAddNodeFromArgs, ADD_NODE_USAGE, nodeUrls } from './cli/add-node.js';
export { runAccountFromArgs, ACCOUNT_USAGE } from './cli/account.js';
export { runDServiceFromArgs, DSERVICE_USAGE, type DServiceCliDeps } from './cli/dservice.js';
export { runMinerRegisterFromArgs, runMinerGrantFromArgs, MINER_REGISTER_USAGE, MINER_GRANT_USAGE } from './cli/miner.js';
export { type CliIo } from './cli/common.js';
export { ensureCa, issueCert, ensureCentralPki, ensureNodePki, ensureDevPki, type KeyPair, type PkiOptions } from './pki.js';
export { setupDevNetwork, type DevSetupOptions, type DevSetupResult, type DevNodeEntry } from './dev-setup.js';
export { registerDevAttestedMiner, type DevAttestedMinerOptions } from './dev-attested.js';
export { centralRegistry, installCentralMetrics, type CentralMetricsOptions } from './http/metrics.js';
