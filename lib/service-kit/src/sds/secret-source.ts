/**
 * What a service plugs into the SDS server: how a resource name becomes a
 * secret that can change. ticket-keys serves `ticket-keys/<ring>`, ocsp-fetch
 * serves `staple/<certificate-id>`; the protocol (state of the world and
 * delta, nonces, ACK/NACK, pushes) is the server's and is the same for both.
 */
import type { CallContext } from '../service-server.js';
import type { EnvoySecret } from './envoy-api.js';

/** Who holds a stream: the mTLS identity and the node id it gave (never the node id alone). */
export interface SdsNode {
  /** The caller's identity as the server derived it from its client certificate. */
  readonly identity: string;
  readonly nodeId: string;
}

/** A secret as it is now. */
export interface BuiltSecret {
  readonly secret: EnvoySecret;
  /** Changes whenever the secret's bytes do. */
  readonly version: string;
  /** When it next changes with nothing announced (a key activating): the server pushes then. */
  readonly nextChangeAtMs?: number | undefined;
}

/** One named resource a stream subscribed to. */
export interface SdsResource<Built extends BuiltSecret> {
  /** The secret now, or undefined when there is none to serve (no usable key, no staple yet, unregistered). */
  current(): Built | undefined;
  /** Calls back when it may have changed; returns the unsubscribe. */
  listen(onChange: () => void): () => void;
  /** A node subscribed (for the service's own bookkeeping); returns what to run when it leaves. */
  attach(node: SdsNode): () => void;
  /** The node applied this version (an ACK). */
  acknowledge(node: SdsNode, built: Built): Promise<void>;
}

export interface SecretSource<Built extends BuiltSecret = BuiltSecret> {
  /** What the service serves, for error messages ("ticket-keys/<ring>"). */
  readonly serves: string;
  /**
   * The resource a name names, with the caller's grant checked. Throws a
   * KeyfleetError (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT) otherwise.
   */
  resolve(name: string, context: CallContext): Promise<SdsResource<Built>>;
  /** The `resource` label of the SDS metrics: bounded (a ring's name, not a certificate's). */
  metricLabel(name: string): string;
}
