/**
 * OCSP refresh throughput: 2,000 registered certificates refreshed by one
 * ocsp-fetch replica (fetch + validate + compare-and-swap store + publish,
 * driven by the BullMQ refresh jobs), in staples per second, against the bare
 * HTTP round trip to the same responder at the same concurrency, measured in
 * the same run. The responder is an in-process pkijs responder that signs
 * every answer (ECDSA P-256) on the spot; certificates are issued with pkijs
 * (one shared leaf key) because the openssl CLI would take minutes for 2,000.
 * Everything shares one Node process and one redis-server.
 */
import http from 'node:http';
import { Registry } from 'prom-client';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import { randomPrefix, startRedis } from '@keyfleet/test-support';
import { createOcspFetchServer } from '../services/ocsp-fetch/src/index.js';
import { buildOcspRequest, ocspGetUrl } from '../services/ocsp-fetch/src/ocsp/ocsp-request.js';
import { parseCertificateChain } from '../services/ocsp-fetch/src/pki/certificate-chain.js';
import { CertificateStore } from '../services/ocsp-fetch/src/store/certificate-store.js';
import { ocspRedisKeys } from '../services/ocsp-fetch/src/store/redis-keys.js';
import {
  createTestCa,
  generateKeyPair,
  issueCertificate,
} from '../services/ocsp-fetch/src/testing/pkijs-test-ca.js';
import { startPkijsOcspResponder } from '../services/ocsp-fetch/src/testing/pkijs-ocsp-responder.js';
import { Redis } from 'ioredis';
import { figure, startTimer, type BenchFigure } from './bench-figure.js';

const certificateCount = Number(process.env.BENCH_OCSP_CERTS ?? 2000);
const perResponderConcurrency = 8;

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.byteLength));
      response.on('end', () => (response.statusCode === 200 ? resolve(bytes) : reject(new Error('status'))));
    });
    request.on('error', reject);
  });
}

/** `count` tasks through `concurrency` lanes; resolves when all are done. */
async function inLanes(count: number, concurrency: number, task: (index: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

export default async function run(): Promise<BenchFigure[]> {
  const redis = await startRedis();
  const ca = await createTestCa();
  const responder = await startPkijsOcspResponder(ca.responder);
  const prefix = randomPrefix('bench-ocsp');
  const keys = ocspRedisKeys(prefix);
  const direct = new Redis(redis.url);
  try {
    // Issue and register the certificates straight into the store: what is
    // measured is the refresh, not the registration RPC.
    const leafKeys = await generateKeyPair();
    const store = new CertificateStore(direct, keys);
    const getUrls: string[] = [];
    for (let i = 0; i < certificateCount; i++) {
      const leaf = await issueCertificate({
        commonName: `bench-${i}.test`,
        issuer: ca.issuer,
        keyPair: leafKeys,
        serial: 100_000 + i,
        dnsNames: [`bench-${i}.test`],
        ocspUrl: responder.url,
      });
      const chain = await parseCertificateChain(leaf.pem() + ca.issuer.pem());
      await store.register(chain, Date.now());
      const request = await buildOcspRequest(leaf.certificate, ca.issuer.certificate, 'sha1');
      getUrls.push(ocspGetUrl(responder.url, request.der)!);
    }

    // Baseline: the bare HTTP exchanges, same responder, same concurrency.
    await inLanes(50, perResponderConcurrency, (i) => httpGet(getUrls[i % getUrls.length]!)); // warm-up
    const baselineTimer = startTimer();
    await inLanes(getUrls.length, perResponderConcurrency, (i) => httpGet(getUrls[i]!));
    const baselinePerSecond = getUrls.length / (baselineTimer() / 1000);

    // The service: starting it enqueues one refresh job per certificate.
    const registry = new Registry();
    const refreshTimer = startTimer();
    const service = await createOcspFetchServer({
      // The test responders listen on loopback.
      allowedResponderNetworks: ['127.0.0.0/8'],
      redisUrl: redis.url,
      security: insecureDevSecurity(),
      grpcAddress: '127.0.0.1:0',
      keyPrefix: prefix,
      registry,
      logger: createLogger('bench-ocsp', 'silent'),
      perResponderConcurrency,
      workerConcurrency: 64,
    });
    let staples = 0;
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      staples = service.hub.certificates().filter((c) => c.staple).length;
      if (staples >= certificateCount) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const refreshSeconds = refreshTimer() / 1000;
    const results = JSON.stringify(
      (await registry.getSingleMetric('keyfleet_ocsp_fetches_total')?.get())?.values,
    );
    await service.stop();
    if (staples < certificateCount) {
      throw new Error(`only ${staples} of ${certificateCount} staples stored; fetches: ${results}`);
    }
    const refreshPerSecond = certificateCount / refreshSeconds;

    return [
      figure(
        'ocsp',
        `refresh_${certificateCount}_certs_throughput`,
        refreshPerSecond,
        'staples/s',
        baselinePerSecond,
      ),
      figure(
        'ocsp',
        `refresh_${certificateCount}_certs_seconds`,
        refreshSeconds,
        's',
        certificateCount / baselinePerSecond,
      ),
    ];
  } finally {
    direct.disconnect();
    await responder.stop();
    await redis.stop();
  }
}
