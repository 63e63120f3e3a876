/**
 * Staples as SDS resources: `staple/<certificate id>` is the registered
 * certificate as Envoy's `tls_certificate` (see envoy-staple-secret.ts),
 * pushed when its staple is refreshed, withdrawn when the staple expires,
 * and gone when the certificate is unregistered. Any known caller may read
 * staples, as with WatchStaples: they are public data.
 */
import {
  ErrorCode,
  KeyfleetError,
  type CallContext,
  type SdsResource,
  type SecretSource,
  sharedBuiltSecret,
} from '@keyfleet/service-kit';
import type { CertificateStore } from '../store/certificate-store.js';
import type { StoredCertificate } from '../store/stored-certificate.js';
import type { StapleHub } from '../stream/staple-hub.js';
import {
  certificateIdOfResource,
  envoyStapleSecret,
  stapleResourcePrefix,
  type EnvoyStapleSecret,
} from './envoy-staple-secret.js';

export interface StapleSecretSourceDeps {
  readonly hub: Pick<StapleHub, 'cached' | 'subscribe'>;
  /** Asked when the hub has not heard of a certificate yet. */
  readonly store: Pick<CertificateStore, 'get'>;
  /** Where each Envoy finds the private key; undefined: SDS answers FAILED_PRECONDITION. */
  readonly privateKeyPathTemplate: string | undefined;
  readonly clock: () => number;
}

export function stapleSecretSource(deps: StapleSecretSourceDeps): SecretSource<EnvoyStapleSecret> {
  const { hub, store, privateKeyPathTemplate, clock } = deps;
  // A stored certificate is replaced on every refresh: its streams share one build of it.
  // Without a key path template resolve() refuses every name, so nothing is built.
  const template = privateKeyPathTemplate;
  const secretOf =
    template === undefined
      ? () => undefined
      : sharedBuiltSecret(
          (certificate: StoredCertificate, nowMs: number) =>
            envoyStapleSecret(`${stapleResourcePrefix}${certificate.chain.id}`, certificate, template, nowMs),
          clock,
        );
  return {
    serves: `${stapleResourcePrefix}<certificate id>`,
    // Certificates are unbounded: one label for all of them.
    metricLabel: () => `${stapleResourcePrefix}*`,

    // The SDS binding admits only known callers, and every grant reads staples.
    async resolve(name: string, _context: CallContext): Promise<SdsResource<EnvoyStapleSecret>> {
      const id = certificateIdOfResource(name);
      if (id === undefined) {
        throw new KeyfleetError(
          ErrorCode.NotFound,
          `SDS resource "${name.slice(0, 80)}": ocsp-fetch serves ${stapleResourcePrefix}<certificate id> (64 lower-case hex)`,
        );
      }
      if (privateKeyPathTemplate === undefined) {
        throw new KeyfleetError(
          ErrorCode.FailedPrecondition,
          'SDS staples need KEYFLEET_SDS_PRIVATE_KEY_PATH (where each Envoy finds the private key) on ocsp-fetch',
        );
      }
      // Registered a moment ago on any replica, the record is in Redis before
      // this replica's hub has it: ask the store, and serve it once the hub
      // does (nothing is sent for it until then). Redis down and not cached:
      // UNAVAILABLE, and Envoy retries.
      if (!hub.cached(id) && !(await store.get(id))) {
        throw new KeyfleetError(ErrorCode.NotFound, `certificate ${id} is not registered`);
      }
      return {
        current: () => secretOf(hub.cached(id)),
        listen: (onChange) =>
          hub.subscribe((change) => {
            if ((change.type === 'removed' ? change.id : change.certificate.chain.id) === id) onChange();
          }),
        attach: () => () => undefined,
        acknowledge: () => Promise.resolve(),
      };
    },
  };
}
