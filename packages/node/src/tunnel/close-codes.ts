/** WebSocket close codes a node uses when it ends a miner's tunnel. */
export const CLOSE = {
  shutdown: 1001,
  authFailed: 4001,
  badFrame: 4002,
  unexpectedFrame: 4003,
  dropped: 4004,
  heartbeatLost: 4005,
  replaced: 4006,
  handshakeTimeout: 4007,
  /** Refused from its tier (open tier: no or too little stake, banned, proven cheater). */
  tierRefused: 4008,
} as const;
