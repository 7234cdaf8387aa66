// The `plexd-userspace/net` entry: a userspace TCP/IP stack over a WireGuard Device, so an
// embedding program joins a mesh with no TUN and no root (docs/api.md "plexd-userspace/net").

export { joinMesh, MeshNet, MeshServer, MeshUdpSocket, MeshAgent } from './mesh.js';
export type { JoinMeshOptions, MeshNetOptions, MeshConnectOptions, MeshFetchInit } from './mesh.js';
export { MeshSocket } from './socket.js';
export { NetStack, NET_DROP_REASONS, NET_STATS, DEFAULT_MTU } from './stack.js';
export type { NetStackOptions, NetDropReason, NetStat, UdpEndpoint } from './stack.js';
export { NetError } from './net-error.js';
export type { NetErrorCode } from './net-error.js';
export { TcpEngine, TCP_DEFAULTS, TCP_DROP_REASONS, TCP_STATS } from './tcp.js';
export type { TcpConnection, TcpLimits, TcpCounters, SockAddr } from './tcp.js';
export { TcpError } from './tcp-error.js';
export type { TcpErrorCode } from './tcp-error.js';
