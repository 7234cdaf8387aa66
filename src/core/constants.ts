// WireGuard protocol constants (whitepaper 5.4 and 6.1, wireguard-go device/constants.go), with
// the spec's names. Every time is in milliseconds, the unit of the core's monotonic `now`.

/** Noise protocol name hashed into the initial chaining key (whitepaper 5.4). */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
/** Noise prologue of WireGuard, mixed into the initial hash (whitepaper 5.4). */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
/** Label hashed with a public key into the MAC1 key (whitepaper 5.4.4). */
export const LABEL_MAC1 = 'mac1----';
/** Label hashed with a public key into the cookie encryption key (whitepaper 5.4.7). */
export const LABEL_COOKIE = 'cookie--';

/** Send a new initiation once a keypair has sent this many messages (whitepaper 6.1: 2^60). */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * No message may be sent or accepted with a counter at or above this. The spec's value is
 * 2^64 - 2^13 - 1; counters here are exact JavaScript numbers, so the bound becomes 2^53 - 1
 * (no sender gets there: 2^53 packets at 10^8/s take 2.8 years, while keys last 3 minutes).
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;
/** The initiator rekeys when its current keypair is this old (whitepaper 6.1: 120 s). */
export const REKEY_AFTER_TIME = 120_000;
/** Keypairs older than this are neither used nor accepted (whitepaper 6.1: 180 s). */
export const REJECT_AFTER_TIME = 180_000;
/** Handshake retries stop after this long without success (whitepaper 6.1: 90 s). */
export const REKEY_ATTEMPT_TIME = 90_000;
/** Retransmit an unanswered initiation after this (whitepaper 6.1: 5 s), plus jitter. */
export const REKEY_TIMEOUT = 5_000;
/** Exclusive upper bound of the random jitter added to handshake timers (wireguard-go: 334 ms). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT (wireguard-go). */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Passive keepalive delay after receiving data without sending any (whitepaper 6.5: 10 s). */
export const KEEPALIVE_TIMEOUT = 10_000;
/** Lifetime of a cookie and of the cookie secret (whitepaper 5.4.7: 120 s). */
export const COOKIE_REFRESH_TIME = 120_000;
/**
 * Minimum spacing of accepted initiations from one peer: 50 ms, stricter than wireguard-go and
 * Linux (up to 50 per second, i.e. 20 ms); any sane initiator waits REKEY_TIMEOUT anyway.
 */
export const HANDSHAKE_INITIATION_RATE = 50;
/** All key material of a peer is erased after this long without a new session (whitepaper 6.4). */
export const ZERO_KEY_MATERIAL_TIME = REJECT_AFTER_TIME * 3;
/** Once under load, the device stays so for this long (wireguard-go UnderLoadAfterTime: 1 s). */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/** Default handshake messages per second above which the device is under load. */
export const UNDER_LOAD_THRESHOLD = 128;
/** Transport plaintext is zero-padded to a multiple of this (whitepaper 5.4.6). */
export const PADDING_MULTIPLE = 16;
/** Packets queued per peer while waiting for a session; the oldest is dropped beyond this. */
export const MAX_STAGED_PACKETS = 128;

/** Per-source handshake rate limiter: sustained rate (wireguard-go ratelimiter: 20/s). */
export const RATELIMIT_PACKETS_PER_SECOND = 20;
/** Per-source handshake rate limiter: burst size (wireguard-go ratelimiter: 5). */
export const RATELIMIT_BURST = 5;
/** Rate limiter entries idle longer than this are forgotten (wireguard-go: 1 s). */
export const RATELIMIT_GC_TIME = 1_000;
/** Most sources the rate limiter tracks at once; new sources beyond it are refused. */
export const RATELIMIT_MAX_ENTRIES = 65_536;
