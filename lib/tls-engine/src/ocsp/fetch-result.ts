/**
 * Why a fetch did or did not produce a staple. One value per cause an operator
 * would act on differently; the values are the `result` label of
 * keyfleet_ocsp_fetches_total and stable across releases.
 */
export enum FetchResult {
  Ok = 'ok',
  // Transport.
  NetworkError = 'network_error',
  /** The responder resolves to a loopback, private, link-local or reserved address not on the allow-list. */
  ForbiddenAddress = 'forbidden_address',
  Timeout = 'timeout',
  HttpError = 'http_error',
  TooLarge = 'too_large',
  // The responder answered a non-successful responseStatus (RFC 6960 4.2.1).
  MalformedRequest = 'malformed_request',
  InternalError = 'internal_error',
  TryLater = 'try_later',
  SigRequired = 'sig_required',
  Unauthorized = 'unauthorized',
  // The body is not a well-formed successful basic response for our request.
  Malformed = 'malformed',
  UnsupportedResponseType = 'unsupported_response_type',
  CertIdMismatch = 'cert_id_mismatch',
  // Who signed it.
  BadSignature = 'bad_signature',
  UnauthorizedSigner = 'unauthorized_signer',
  // When it is valid.
  NotYetValid = 'not_yet_valid',
  Expired = 'expired',
  NoNextUpdate = 'no_next_update',
  // What it says: "unknown" is never stapled (a client may hard-fail on it).
  CertStatusUnknown = 'cert_status_unknown',
}

/** A failure: the reason (a metric label) and a short human detail for FetchState.last_error. */
export interface FetchFailure {
  readonly ok: false;
  readonly reason: Exclude<FetchResult, FetchResult.Ok>;
  readonly detail: string;
}

export function fetchFailure(reason: Exclude<FetchResult, FetchResult.Ok>, detail: string): FetchFailure {
  return { ok: false, reason, detail };
}
