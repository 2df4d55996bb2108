// protocols/mqtt: MQTT 3.1 / 3.1.1 / 5.0 over TCP, TLS, WebSocket and WSS on top of the engine;
// the listeners themselves are protocols/listener's.
export { MqttConnection, type Authenticate, type ConnectionRegistry, type ConnectRequestInfo, type Transport } from './connection.js';
export { PacketFramer, type FrameResult } from './framing.js';
export { INBOUND_UNRESERVED_BYTES, InboundBudget, type InboundBudgetStats, type InboundReservation } from '../listener/index.js';
export { ReasonCode, reasonName } from './reason-codes.js';
export { MqttErrors } from './errors.js';
export { DEFAULT_MQTT_PORT, MqttServer, type MqttServerOptions } from './server.js';
export { loadMqttTls } from './tls.js';
export { DEFAULT_WS_PATH, MqttWebSocketServer, type MqttWebSocketServerOptions } from './websocket.js';
export { MQTT_LIMITS, mqttLimitDefaults, type MqttLimits } from './limits.js';
export { OutboundPacketIds } from './packet-ids.js';
export { mqttSubscriptionOptions, subscriptionOptionsOf, type MqttSubscriptionOptions } from './subscription-options.js';
