import type { Redis } from 'ioredis';

/**
 * Calls `catchUp` after every reconnect of a pub/sub connection, once Redis
 * has confirmed the channel's subscription again.
 *
 * Redis pub/sub is at-most-once: what is published while a subscriber is
 * disconnected is lost, so a follower must re-read state after a reconnect.
 * ioredis emits 'ready' *before* it re-sends SUBSCRIBE (autoResubscribe), so a
 * re-read started on 'ready' can finish before the subscription is live again
 * and miss a change published in between — for good. Here SUBSCRIBE is issued
 * again and awaited first (a duplicate SUBSCRIBE is harmless). Register this
 * after the initial subscription; the returned function stops it.
 */
export function catchUpAfterResubscribe(
  subscriber: Redis,
  channel: string,
  catchUp: () => void,
  onError: (error: unknown) => void,
): () => void {
  const onReady = () => {
    subscriber.subscribe(channel).then(() => catchUp(), onError);
  };
  subscriber.on('ready', onReady);
  return () => subscriber.off('ready', onReady);
}
