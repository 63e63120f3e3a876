import { TicketDecision, TicketReason, TicketStatus } from '@keyfleet/proto';
import type { RingRules } from '../engine/ticket-key-ring.js';
import { lookupTicketKey, openedTicketStatus } from '../keys/ticket-decision-table.js';
import { keyNameHex, KEY_NAME_BYTES } from '../keys/ticket-key.js';
import type { EngineMetrics } from '../metrics/engine-metrics.js';
import {
  composePolicies,
  enforceLegalDecision,
  type PolicyInput,
  type PolicyRingRules,
  type PolicyVerdict,
  type TicketPolicy,
} from '../decisions/ticket-policy.js';
import type { EngineLogger } from './attach-options.js';
import type { TicketKeySource } from './key-source.js';
import {
  OpenSslTicketReturn,
  OpenSslTicketStatus,
  type DecryptFacts,
  type GenerateFacts,
  type ServerTicketHandlers,
} from './native-port.js';
import { decodeTicketAppdata, encodeTicketAppdata } from './ticket-appdata.js';

/** What the generate callback may add to a ticket besides the engine's own appdata. */
export type UserAppdataSource = (connection: {
  readonly serverName: string | undefined;
  readonly protocolVersion: number;
}) => Uint8Array | undefined;

export interface SessionTicketCallbackOptions {
  readonly keys: TicketKeySource;
  readonly policies: readonly TicketPolicy[];
  readonly metrics: EngineMetrics;
  readonly now: () => number;
  readonly nodeId: string;
  readonly maxClockSkewMs: number;
  readonly userAppdata: UserAppdataSource | undefined;
  readonly logger: EngineLogger;
}

const STATUS_OF_OPENSSL: Readonly<Record<number, TicketStatus>> = {
  [OpenSslTicketStatus.EMPTY]: TicketStatus.EMPTY,
  [OpenSslTicketStatus.NO_DECRYPT]: TicketStatus.NO_DECRYPT,
  [OpenSslTicketStatus.SUCCESS]: TicketStatus.SUCCESS,
  [OpenSslTicketStatus.SUCCESS_RENEW]: TicketStatus.SUCCESS_RENEW,
};

const RETURN_OF_DECISION: Readonly<Record<number, number>> = {
  [TicketDecision.ABORT]: OpenSslTicketReturn.ABORT,
  [TicketDecision.IGNORE]: OpenSslTicketReturn.IGNORE,
  [TicketDecision.IGNORE_RENEW]: OpenSslTicketReturn.IGNORE_RENEW,
  [TicketDecision.USE]: OpenSslTicketReturn.USE,
  [TicketDecision.USE_RENEW]: OpenSslTicketReturn.USE_RENEW,
};

const NO_RULES: RingRules = {
  rotationIntervalMs: 0,
  decryptWindowMs: 0,
  ticketLifetimeHintMs: 0,
  maxSessionAgeMs: 0,
  bindServerName: false,
};
const EMPTY = new Uint8Array(0);
const MALFORMED_APPDATA: PolicyVerdict = {
  decision: TicketDecision.IGNORE_RENEW,
  reason: TicketReason.MALFORMED,
};

/**
 * OpenSSL's session-ticket callbacks for one server, in the engine's terms.
 *
 * Generate writes the engine's appdata (first issue time, epoch, SNI, node id,
 * client-certificate fingerprint, optional user appdata); a renewal keeps the
 * first issue time, SNI and client of the session it renews.
 *
 * Decrypt turns OpenSSL's status (which Node's ticket-key hook already chose
 * through the shared table: a DECRYPT_ONLY key reaches here as SUCCESS_RENEW)
 * plus the appdata and the connection into a decision, through the same
 * composable policies as TicketEngine.decrypt, then OpenSSL's legality rule.
 * A throw anywhere is ABORT, counted and logged (at most once a minute).
 */
export function sessionTicketCallbacks(options: SessionTicketCallbackOptions): ServerTicketHandlers {
  const { keys, metrics, now, nodeId } = options;
  const ring = keys.ring;
  const decide = composePolicies(options.policies);
  const ticketAge = metrics.ticketAgeSeconds.labels({ ring });
  const errors = {
    generate: metrics.ticketCallbackErrors.labels({ ring, callback: 'generate' }),
    decrypt: metrics.ticketCallbackErrors.labels({ ring, callback: 'decrypt' }),
  };
  // Exported at 0 from the start: increase() in the alerts and panels cannot
  // see the first error of a series that appears already at 1.
  errors.generate.inc(0);
  errors.decrypt.inc(0);
  metrics.illegalDecisions.inc({ ring }, 0);
  let lastLoggedMs = -Infinity;
  const report = (callback: 'generate' | 'decrypt', error: unknown) => {
    errors[callback].inc();
    const at = Date.now();
    if (at - lastLoggedMs < 60_000) return;
    lastLoggedMs = at;
    options.logger.warn(`ticket ${callback} callback threw; the handshake got the safe answer`, {
      ring,
      error: error instanceof Error ? error.message : String(error),
    });
  };

  // The policies' view of the ring, rebuilt only when the rules object changes.
  let rulesSeen: RingRules | undefined;
  let policyRules: PolicyRingRules = { ...NO_RULES, maxClockSkewMs: options.maxClockSkewMs };
  const rulesNow = (): PolicyRingRules => {
    const rules = keys.rules?.() ?? NO_RULES;
    if (rules !== rulesSeen) {
      rulesSeen = rules;
      policyRules = {
        maxSessionAgeMs: rules.maxSessionAgeMs,
        bindServerName: rules.bindServerName,
        maxClockSkewMs: options.maxClockSkewMs,
      };
    }
    return policyRules;
  };

  const generate = (facts: GenerateFacts): Uint8Array | undefined => {
    try {
      const renewed = decodeTicketAppdata(facts.existingAppdata);
      return encodeTicketAppdata({
        issuedAtMs: renewed?.issuedAtMs ?? Math.floor(now()),
        epoch: keys.epoch?.() ?? 0,
        serverName: renewed?.serverName ?? (facts.serverName ?? '').toLowerCase(),
        nodeId,
        clientFingerprint: renewed?.clientFingerprint ?? facts.peerFingerprint,
        userAppdata:
          options.userAppdata?.({ serverName: facts.serverName, protocolVersion: facts.protocolVersion }) ??
          renewed?.userAppdata ??
          EMPTY,
      });
    } catch (error) {
      report('generate', error);
      return undefined;
    }
  };

  const decrypt = (facts: DecryptFacts): number => {
    try {
      let status = STATUS_OF_OPENSSL[facts.status] ?? TicketStatus.NO_DECRYPT;
      const nowMs = now();
      // The ticket's key, by the shared table (a label only for names the set holds).
      let reason: TicketReason = TicketReason.EMPTY;
      let keyState: PolicyInput['keyState'];
      let knownKeyHex: string | undefined;
      if (status !== TicketStatus.EMPTY) {
        const nameHex = facts.keyName?.length === KEY_NAME_BYTES ? keyNameHex(facts.keyName) : undefined;
        const lookup = nameHex === undefined ? undefined : lookupTicketKey(keys.schedule(), nameHex, nowMs);
        if (!lookup) {
          status = TicketStatus.NO_DECRYPT;
          reason = TicketReason.MALFORMED;
        } else if ('refused' in lookup) {
          // Unknown, revoked or expired by the table: refused whatever OpenSSL opened.
          status = TicketStatus.NO_DECRYPT;
          reason = lookup.refused.reason;
          keyState = lookup.state;
          if (lookup.key) knownKeyHex = nameHex;
        } else {
          keyState = lookup.state;
          knownKeyHex = nameHex;
          // Held and live, yet OpenSSL could not open it: the bytes were altered.
          reason =
            status === TicketStatus.NO_DECRYPT
              ? TicketReason.AUTH_FAILED
              : openedTicketStatus(lookup.state).reason;
        }
      }
      const opened = status === TicketStatus.SUCCESS || status === TicketStatus.SUCCESS_RENEW;
      const appdata = decodeTicketAppdata(facts.appdata);
      const peerIdentity = facts.peerFingerprint?.toString('hex');
      let verdict: PolicyVerdict;
      if (opened && facts.appdata !== undefined && !appdata) {
        // Sealed by a node of the ring, yet unreadable: never guess.
        verdict = MALFORMED_APPDATA;
      } else {
        verdict = decide({
          status,
          reason,
          keyState,
          // A ticket from a node without the port carries no appdata: its
          // session time is the best issue time there is.
          issuedAtMs:
            appdata?.issuedAtMs ??
            (opened && facts.sessionTimeSeconds !== undefined ? facts.sessionTimeSeconds * 1000 : undefined),
          nowMs,
          bound: appdata
            ? {
                serverName: appdata.serverName,
                clientIdentity: appdata.clientFingerprint
                  ? Buffer.from(appdata.clientFingerprint).toString('hex')
                  : peerIdentity,
              }
            : { clientIdentity: peerIdentity },
          connection: { serverName: facts.serverName?.toLowerCase(), clientIdentity: peerIdentity },
          ring: rulesNow(),
          appdata: appdata?.userAppdata,
          issuer: appdata ? { nodeId: appdata.nodeId, epoch: appdata.epoch } : undefined,
        });
      }
      const legal = enforceLegalDecision(status, verdict);
      metrics.countDecision(ring, knownKeyHex, legal.decision, legal.reason);
      if (legal.illegal) metrics.illegalDecisions.inc({ ring });
      if (opened && appdata) ticketAge.observe(Math.max(0, nowMs - appdata.issuedAtMs) / 1000);
      return RETURN_OF_DECISION[legal.decision] ?? OpenSslTicketReturn.ABORT;
    } catch (error) {
      report('decrypt', error);
      metrics.countDecision(ring, undefined, TicketDecision.ABORT, TicketReason.ILLEGAL_DECISION);
      return OpenSslTicketReturn.ABORT;
    }
  };

  return { generate, decrypt };
}
