// Preloaded (`node --import`) into the `control-plane serve` children of bench/control-plane.mjs
// when one replica must hold more connections than the stock cap (CONTROL_PLANE_HTTP_LIMITS
// .maxConnections, 4,096): raises that cap to PLEXD_BENCH_MAX_CONNECTIONS before the server reads
// it. The bench says so in its output; `serve` itself has no flag for the cap.

import { CONTROL_PLANE_HTTP_LIMITS } from '../../dist/io/http-guard.js';

const cap = Number(process.env.PLEXD_BENCH_MAX_CONNECTIONS);
if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`PLEXD_BENCH_MAX_CONNECTIONS: expected a positive integer, got ${process.env.PLEXD_BENCH_MAX_CONNECTIONS}`);
CONTROL_PLANE_HTTP_LIMITS.maxConnections = cap;
