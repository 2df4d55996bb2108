// TLS for the MQTT listeners: protocols/listener loads and checks the files; a bad setup stops
// the start with the MQTT front end's own code (SL_MQTT_TLS_SETUP), as it always has.
import { loadTls, type TlsFiles, type TlsListener } from '../listener/index.js';
import { MqttErrors } from './errors.js';

/** Reads and checks the certificate, key and CA files for MQTTS and WSS (listener/tls.ts). */
export function loadMqttTls(files: TlsFiles): Promise<TlsListener> {
  return loadTls(files, (context, detail) => MqttErrors.tlsSetup.create(context, detail));
}
