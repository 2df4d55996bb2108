// protocols/listener: what every front end's listeners share, whatever the protocol: binding a
// TCP, TLS, WebSocket or WSS port, TLS (certificates, mutual TLS), admission at accept (the
// headroom over max-connections, the abuse gate) and the hold that keeps sockets unserved until
// the node has bound every port. A front end gives a socket handler and gets admitted sockets.
export { AbuseControl, addressOf, ClientGuard, ConnectGate, LogLimiter, NO_ABUSE_LIMITS, subscriptionQuota, TokenBucket, type AbuseLimits, type LiveAbuseLimits, type PublishVerdict, type Refusal } from './abuse.js';
export { admit, type AdmissionLimits, type Admitted } from './admission.js';
export { bind, type BindOptions, type ListenFailure } from './bind.js';
export { ConnectionHold } from './connection-hold.js';
export { hostPort, remoteAddressOf } from './remote-address.js';
export { TcpListener, type ListenerOptions, type TcpListenerOptions } from './tcp-listener.js';
export { certificateNameOf, loadTls, tlsRefusal, type ClientAuth, type TlsFiles, type TlsListener, type TlsSetupFailure } from './tls.js';
export { WebSocketListener, type WebSocketListenerOptions } from './websocket-listener.js';
export { INBOUND_UNRESERVED_BYTES, InboundBudget, type InboundBudgetStats, type InboundReservation } from './inbound-budget.js';
