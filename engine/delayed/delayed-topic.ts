// `$delayed/{seconds}/{topic}`: a publish to this topic is delivered to {topic} after {seconds}.
// The form is checked here, purely; the bounds (max-delay-seconds) are the scheduler's.

export const DELAYED_PREFIX = '$delayed/';

export type DelayedTopic = { ok: true; delaySeconds: number; topic: string } | { ok: false; detail: string };

/** Splits a `$delayed/...` topic name into its delay and target; call only for names with the prefix. */
export function parseDelayedTopic(name: string): DelayedTopic {
  const rest = name.slice(DELAYED_PREFIX.length);
  const slash = rest.indexOf('/');
  const seconds = slash === -1 ? rest : rest.slice(0, slash);
  // Digits only: "1e3", "-5", " 5" and "0x10" are typos far more often than intent.
  if (!/^\d{1,10}$/.test(seconds)) return { ok: false, detail: `${JSON.stringify(name)}: the level after $delayed/ must be the delay in whole seconds, got ${JSON.stringify(seconds)}` };
  const topic = slash === -1 ? '' : rest.slice(slash + 1);
  if (topic === '') return { ok: false, detail: `${JSON.stringify(name)}: no target topic after $delayed/${seconds}/` };
  // A delayed publish to a delayed topic would let a client chain delays past max-delay-seconds.
  if (topic.startsWith(DELAYED_PREFIX)) return { ok: false, detail: `${JSON.stringify(name)}: the target topic cannot itself be a $delayed/ topic` };
  return { ok: true, delaySeconds: Number(seconds), topic };
}
