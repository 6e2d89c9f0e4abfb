// Alarm kinds as the console and the app show them: a glyph in a coloured disc, and the translated
// name (`kind.<name>` in i18n.js). Fire and gas are red-orange (call 119), medical and falls
// crimson, technical faults grey, welfare and service calm colours.
import { t, tOr } from './i18n.js';
import { h } from './api.js';

export const KINDS = {
  sos: { icon: 'SOS', color: '#c1121f' },
  panic: { icon: '!', color: '#c1121f' },
  fall: { icon: '⤓', color: '#9d0208' },
  medical: { icon: '✚', color: '#d00000' },
  smoke: { icon: '♨', color: '#e85d04' },
  fire: { icon: '♨', color: '#dc2f02' },
  gas: { icon: '☁', color: '#f48c06' },
  water_leak: { icon: '≈', color: '#0077b6' },
  inactivity: { icon: '◷', color: '#7b2cbf' },
  wandering: { icon: '↗', color: '#5a189a' },
  missed_check_in: { icon: '◷', color: '#7b2cbf' },
  low_battery: { icon: '▭', color: '#6c757d' },
  power_loss: { icon: '⚡', color: '#6c757d' },
  tamper: { icon: '⚠', color: '#6c757d' },
  device_fault: { icon: '⚙', color: '#6c757d' },
  silent: { icon: '⦸', color: '#6c757d' },
  daily_care: { icon: '♥', color: '#2a9d8f' },
  housekeeping: { icon: '⌂', color: '#2a9d8f' },
  emotional_care: { icon: '☺', color: '#2a9d8f' },
  health_consultation: { icon: '✚', color: '#2a9d8f' },
};

export const kindName = (k) => tOr(`kind.${k}`, k || t('unknown'));

/** The kind's badge: coloured disc with its glyph, then its name. */
export function kindBadge(kind, { testid, big = false } = {}) {
  const k = KINDS[kind] || { icon: '•', color: '#577590' };
  return h(`span.kind${big ? '.big' : ''}`, { 'data-kind': kind, testid, style: `--kc:${k.color}` },
    h('i.kind-icon', { 'aria-hidden': 'true' }, k.icon), h('span.kind-name', { 'data-i18n': t(`kind.${kind}`) === `kind.${kind}` ? undefined : `kind.${kind}` }, kindName(kind)));
}
