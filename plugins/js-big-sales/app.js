// big-sales, in JavaScript: marks sales whose total reaches `threshold_minor` with `bigsale = true`.
import { get } from 'kaunter:plugin/config@0.2.0';

export function handle(event) {
  const threshold = JSON.parse(get()).threshold_minor;
  if (!Number.isInteger(threshold)) {
    throw { tag: 'invalid-config', val: 'threshold_minor must be an integer (minor units)' };
  }
  if (event.payload.tag === 'sale' && event.payload.val.totals.total.amountMinor >= BigInt(threshold)) {
    event.extensions.push(['bigsale', 'true']);
  }
  return [event];
}
