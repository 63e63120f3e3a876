/**
 * The one error class of the services. Code names what went wrong in the
 * service's own words; the gRPC status is chosen only at the server edge
 * (grpc-status.ts). Messages are shown to callers: they name fields and values
 * the caller sent, never key material.
 */
export enum ErrorCode {
  InvalidArgument = 'invalid_argument',
  NotFound = 'not_found',
  AlreadyExists = 'already_exists',
  FailedPrecondition = 'failed_precondition',
  Aborted = 'aborted',
  PermissionDenied = 'permission_denied',
  Unauthenticated = 'unauthenticated',
  Unavailable = 'unavailable',
  ResourceExhausted = 'resource_exhausted',
  Internal = 'internal',
  Unimplemented = 'unimplemented',
}

export class KeyfleetError extends Error {
  override readonly name = 'KeyfleetError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand for the most common error: a request field that is wrong. */
export function invalidArgument(field: string, problem: string): KeyfleetError {
  return new KeyfleetError(ErrorCode.InvalidArgument, `${field}: ${problem}`);
}
