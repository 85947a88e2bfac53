/** The session bar's folder in every session's path: `/user/<session>/_bindery/`. */
export const SESSION_BAR = '_bindery';

/**
 * What follows `/user/<session>/_bindery` in a session's path (`/`, `/download`, `` for the
 * bare folder, with any query), or undefined when the path is not the bar's. Jupyter has no
 * `_bindery` of its own, so nothing of the session's is hidden by it.
 */
export function sessionBarPath(path: string, session: string): string | undefined {
  const prefix = `/user/${session}/${SESSION_BAR}`;
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  return rest === '' || /^[/?#]/.test(rest) ? rest : undefined;
}
