/**
 * The header that names the parent of the operations a request creates: the client SDK sends it
 * (`withParent`, `runWithParent`) and the API reads it on `POST /v1/operations`.
 */

export const PARENT_HEADER = 'x-lro-parent';
