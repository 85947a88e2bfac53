/** Docker answered 404: the container, image, network or node is not there. */
export const isMissing = (error: unknown) => (error as { statusCode?: number }).statusCode === 404;

/** Docker answered 409: the name is taken (by another Bindery process made at the same moment). */
export const isConflict = (error: unknown) => (error as { statusCode?: number }).statusCode === 409;
