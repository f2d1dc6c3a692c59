// @ts-check
// DICOM administration over /api/v1 (signaling_server/dicomstore/DICOMWEB.md §DICOM peers, §Forwarding; docs/SECURITY.md
// §5): the peers that may C-STORE into a site (AE title, networks, pinned certificate, limits), and the forward jobs
// to the regional PACS that failed, to re-queue. Admins only. No DOM.

/**
 * @typedef {import("./api.js").Api} Api
 * @typedef {{id: string, ae_title: string, site_id: string, networks: string[], tls_client_sha256: string|null,
 *   tls_client_subject: string|null, max_dataset_bytes: number, max_associations: number, enabled: boolean,
 *   created_at: string}} DicomPeer
 * @typedef {{ae_title: string, site_id: string, networks: string[], tls_client_sha256?: string,
 *   max_dataset_bytes?: number, max_associations?: number}} NewPeer
 * @typedef {{id: number, instance_id: string, sop_uid: string, study_uid: string, site_id: string,
 *   destination: string, state: "pending"|"sent"|"failed", attempts: number, last_error: string|null,
 *   next_attempt_at: string|null}} ForwardJob
 */

export const MIB = 1024 * 1024;

/** @param {Api} api @returns {Promise<DicomPeer[]>} by AE title */
export async function listPeers(api) {
  return (await api.request("GET", "/dicom-peers")).peers;
}

/** @param {Api} api @param {NewPeer} peer @returns {Promise<DicomPeer>} */
export function createPeer(api, peer) {
  return api.request("POST", "/dicom-peers", peer);
}

/**
 * Refuse (or admit again) the peer's associations; its next C-STORE on an open one is refused too.
 * @param {Api} api
 * @param {string} peerId
 * @param {boolean} enabled
 * @returns {Promise<DicomPeer>}
 */
export function setPeerEnabled(api, peerId, enabled) {
  return api.request("POST", `/dicom-peers/${encodeURIComponent(peerId)}/${enabled ? "enable" : "disable"}`);
}

/** The failed forward jobs, oldest first. @param {Api} api @returns {Promise<ForwardJob[]>} */
export async function failedJobs(api) {
  return (await api.request("GET", "/forward-jobs?state=failed&limit=1000")).jobs;
}

/** One failed job pending again, due now. @param {Api} api @param {number} jobId @returns {Promise<ForwardJob>} */
export function requeueJob(api, jobId) {
  return api.request("POST", `/forward-jobs/${jobId}/requeue`);
}

/** Every failed job pending again. @param {Api} api @returns {Promise<number[]>} the ids re-queued */
export async function requeueAllFailed(api) {
  return (await api.request("POST", "/forward-jobs/requeue", {})).requeued;
}

/**
 * The networks typed in a box: split on commas, spaces and new lines, blanks dropped.
 * @param {string} text
 * @returns {string[]}
 */
export function networksOf(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

/**
 * A certificate's SHA-256 as `openssl x509 -fingerprint -sha256` prints it ("SHA256 Fingerprint=AB:CD:…") or as
 * plain hex: the 64 lower-case hex digits the server wants (anything else is left for the server to refuse).
 * @param {string} text
 */
export function fingerprintOf(text) {
  const value = text.trim().replace(/^sha-?256 fingerprint=/i, "");
  return /^[0-9a-f]{2}(:[0-9a-f]{2})+$/i.test(value) ? value.replaceAll(":", "").toLowerCase() : value.toLowerCase();
}

/**
 * The peer to create from the form's fields; empty optional fields are left to the server's defaults.
 * @param {{ae_title: string, site_id: string, networks: string, sha256: string, max_mib: string,
 *   max_associations: string}} form
 * @returns {NewPeer}
 */
export function peerFromForm(form) {
  /** @type {NewPeer} */
  const peer = { ae_title: form.ae_title.trim(), site_id: form.site_id, networks: networksOf(form.networks) };
  const sha256 = fingerprintOf(form.sha256);
  if (sha256) peer.tls_client_sha256 = sha256;
  if (form.max_mib.trim()) peer.max_dataset_bytes = Math.round(Number(form.max_mib) * MIB);
  if (form.max_associations.trim()) peer.max_associations = Number(form.max_associations);
  return peer;
}

/**
 * A byte count in MiB (or KiB when under one MiB).
 * @param {number} bytes
 */
export function sizeText(bytes) {
  return bytes >= MIB ? `${+(bytes / MIB).toFixed(1)} MiB` : `${+(bytes / 1024).toFixed(1)} KiB`;
}
