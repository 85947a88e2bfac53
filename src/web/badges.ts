/**
 * The static "launch | binder" badge BinderHub serves at /badge_logo.svg and /badge.svg. Text
 * only: it draws no logo; its name follows the first path's.
 */
export const BADGE_LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="109" height="20" role="img" aria-label="launch: binder"><title>launch: binder</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="109" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="64" height="20" fill="#555"/><rect x="64" width="45" height="20" fill="#579aca"/><rect width="109" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110"><text x="330" y="140" transform="scale(.1)">launch</text><text x="855" y="140" transform="scale(.1)">binder</text></g></svg>`;

const COLOURS: Record<string, string> = {
  built: '#4c1',
  building: '#dfb317',
  failed: '#e05d44',
  'not built': '#9f9f9f',
};

/** A shields-style badge "binder | <status>" for the live status of a repository and ref. */
export function statusBadge(status: keyof typeof COLOURS | string): string {
  const colour = COLOURS[status] ?? '#9f9f9f';
  const right = Math.max(40, status.length * 7 + 10);
  const width = 50 + right;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="20" role="img" aria-label="binder: ${status}"><title>binder: ${status}</title><clipPath id="r"><rect width="${width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="50" height="20" fill="#555"/><rect x="50" width="${right}" height="20" fill="${colour}"/></g><g fill="#fff" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="7" y="14">binder</text><text x="${50 + 6}" y="14">${status}</text></g></svg>`;
}
