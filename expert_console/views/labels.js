// @ts-check
// The words for the codes the server sends (exam types, consultation states, roles), in the reader's language;
// a code the catalogs do not know shows as itself.

import { has, t } from "../i18n.js";

/**
 * @param {string} key
 * @param {string} code
 */
const label = (key, code) => (has(key) ? t(key) : code);

/** @param {string} examType */
export const examLabel = (examType) => label(`home.exam.${examType}`, examType);
/** @param {string} state a consultation's state */
export const stateLabel = (state) => label(`home.state.${state}`, state);
/** @param {string} role */
export const roleLabel = (role) => label(`nav.role.${role}`, role);
/** @param {string} state a study's state in the reading queue (registered … approved) */
export const studyStateLabel = (state) => label(`queue.state.${state}`, state);
/** @param {string} priority stat, urgent, routine */
export const priorityLabel = (priority) => label(`queue.priority.${priority}`, priority);
/** @param {string} state a session recording's state */
export const recordingStateLabel = (state) => label(`recordings.state.${state}`, state);
