import { status, Metadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, KeyfleetError } from './keyfleet-error.js';

const statusByCode: Record<ErrorCode, status> = {
  [ErrorCode.InvalidArgument]: status.INVALID_ARGUMENT,
  [ErrorCode.NotFound]: status.NOT_FOUND,
  [ErrorCode.AlreadyExists]: status.ALREADY_EXISTS,
  [ErrorCode.FailedPrecondition]: status.FAILED_PRECONDITION,
  [ErrorCode.Aborted]: status.ABORTED,
  [ErrorCode.PermissionDenied]: status.PERMISSION_DENIED,
  [ErrorCode.Unauthenticated]: status.UNAUTHENTICATED,
  [ErrorCode.Unavailable]: status.UNAVAILABLE,
  [ErrorCode.ResourceExhausted]: status.RESOURCE_EXHAUSTED,
  [ErrorCode.Internal]: status.INTERNAL,
  [ErrorCode.Unimplemented]: status.UNIMPLEMENTED,
};

/**
 * Turns anything thrown by a handler into a gRPC error. Only KeyfleetError
 * messages reach the caller; anything else becomes a bare INTERNAL so that no
 * library's message (which might quote a buffer) leaks.
 */
export function toServiceError(error: unknown): Partial<ServiceError> & { code: status } {
  if (error instanceof KeyfleetError) {
    return { code: statusByCode[error.code], details: error.message, metadata: new Metadata() };
  }
  return { code: status.INTERNAL, details: 'internal error', metadata: new Metadata() };
}

/** The canonical upper-case name of a status, for metrics labels. */
export function statusName(code: status): string {
  return status[code] ?? String(code);
}
