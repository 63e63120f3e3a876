// service-kit's gRPC wiring over real mTLS: certificates from a throwaway
// openssl PKI, roles from a file, and the status every kind of caller gets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  OpenTicketResponse,
  SealTicketResponse,
  TicketServiceClient,
  TicketServiceService,
  TicketStatus,
  OpenTicketRequest,
  SealTicketRequest,
} from '@keyfleet/proto';
import { createTestPki, freePort, type IssuedCertificate, type TestPki } from '@keyfleet/test-support';
import {
  createLogger,
  ErrorCode,
  KeyfleetError,
  methodAccess,
  mtlsSecurity,
  startServiceServer,
  type RunningServiceServer,
} from '../src/index.js';

let pki: TestPki;
let server: RunningServiceServer;
let registry: Registry;
let admin: IssuedCertificate;
let reader: IssuedCertificate;
let stranger: IssuedCertificate;

before(async () => {
  pki = createTestPki(await freePort());
  admin = pki.issueClient('ops-admin');
  reader = pki.issueClient('node-1');
  stranger = pki.issueClient('stranger');
  const serverCert = pki.issueLeaf('grpc-server', { dnsNames: ['localhost'], ocspUrl: false });
  const rolesPath = path.join(pki.dir, 'roles.json');
  writeFileSync(rolesPath, JSON.stringify({ admin: ['cn:ops-admin'], 'reader:default': ['cn:node-1'] }));
  const caPath = path.join(pki.dir, 'ca-bundle.pem');
  writeFileSync(caPath, pki.root.certPem() + pki.intermediate.certPem());
  registry = new Registry();
  server = await startServiceServer({
    address: '127.0.0.1:0',
    security: mtlsSecurity({
      certPath: serverCert.chainPath,
      keyPath: serverCert.keyPath,
      clientCaPath: caPath,
      rolesPath,
    }),
    registry,
    logger: createLogger('test', 'silent'),
    services: [
      {
        definition: TicketServiceService,
        // SealTicket stands in for an admin write, OpenTicket for a read.
        access: { SealTicket: methodAccess.admin, OpenTicket: methodAccess.known },
        handlers: {
          sealTicket: async (request: SealTicketRequest) => {
            if (request.ring === 'boom') throw new Error('secret bytes 0xdeadbeef');
            if (request.ring === '') throw new KeyfleetError(ErrorCode.InvalidArgument, 'ring: required');
            return SealTicketResponse.fromPartial({ ticket: Buffer.from('t'), keyName: Buffer.alloc(16) });
          },
          openTicket: async (_request: OpenTicketRequest) =>
            OpenTicketResponse.fromPartial({ status: TicketStatus.NO_DECRYPT }),
        },
      },
    ],
  });
});

after(async () => {
  await server?.stop();
  pki?.remove();
});

function client(cert?: IssuedCertificate) {
  const ca = Buffer.from(pki.root.certPem() + pki.intermediate.certPem());
  const credentials = cert
    ? grpc.credentials.createSsl(ca, Buffer.from(cert.keyPem()), Buffer.from(cert.chainPem()))
    : grpc.credentials.createSsl(ca);
  return new TicketServiceClient(`localhost:${server.port}`, credentials);
}

type Callback<T> = (error: grpc.ServiceError | null, response: T) => void;

function seal(c: TicketServiceClient, ring: string) {
  return new Promise<{ error: grpc.ServiceError | null; response: SealTicketResponse }>((resolve) =>
    c.sealTicket(SealTicketRequest.fromPartial({ ring }), ((error, response) =>
      resolve({ error, response })) as Callback<SealTicketResponse>),
  );
}

function open(c: TicketServiceClient, ring: string) {
  return new Promise<{ error: grpc.ServiceError | null }>((resolve) =>
    c.openTicket(OpenTicketRequest.fromPartial({ ring }), (error) => resolve({ error })),
  );
}

test('an admin may call an admin method', async () => {
  const c = client(admin);
  const { error, response } = await seal(c, 'default');
  assert.equal(error, null);
  assert.equal(Buffer.from(response.ticket).toString(), 't');
  c.close();
});

test('a reader may read but gets PERMISSION_DENIED for an admin method', async () => {
  const c = client(reader);
  assert.equal((await open(c, 'default')).error, null);
  const { error } = await seal(c, 'default');
  assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
  assert.match(error?.details ?? '', /SealTicket needs the admin role/);
  c.close();
});

test('a certificate with no role gets PERMISSION_DENIED, none at all UNAUTHENTICATED', async () => {
  const s = client(stranger);
  assert.equal((await open(s, 'default')).error?.code, grpc.status.PERMISSION_DENIED);
  s.close();
  const anonymous = client();
  const { error } = await open(anonymous, 'default');
  assert.equal(error?.code, grpc.status.UNAUTHENTICATED);
  anonymous.close();
});

test('KeyfleetError maps to its status; any other error is a bare INTERNAL that leaks nothing', async () => {
  const c = client(admin);
  const invalid = await seal(c, '');
  assert.equal(invalid.error?.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(invalid.error?.details, 'ring: required');
  const boom = await seal(c, 'boom');
  assert.equal(boom.error?.code, grpc.status.INTERNAL);
  assert.equal(boom.error?.details, 'internal error');
  c.close();
});

test('every call is counted by method and status code', async () => {
  const metrics = await registry.getSingleMetricAsString('keyfleet_grpc_requests_total');
  assert.match(metrics, /method="SealTicket",code="PERMISSION_DENIED"\} [1-9]/);
  assert.match(metrics, /method="OpenTicket",code="UNAUTHENTICATED"\} [1-9]/);
  assert.match(metrics, /method="SealTicket",code="INTERNAL"\} [1-9]/);
  assert.match(metrics, /method="OpenTicket",code="OK"\} [1-9]/);
});
