/* haulwatch console: the drone part (issue 13, "Beyond one drone").
 *
 * - The fleet panel: every drone of every dock (state, charge, when it is free again)
 *   and one queue — waiting, timed, flying, then the last missions done or failed —
 *   with reprioritise / cancel / abort for dispatchers (the API checks the role; a
 *   refusal is shown). GET api/fleet; 503 = no fleet configured: the panel says so.
 * - On an alert's detail: the last flown mission's evidence (GET api/missions/{id}/evidence):
 *   its flown track and photo points on the map beside the truck's track (through the
 *   console's own datum shift, so they line up on a GCJ-02 base map), the outcome,
 *   the flight log download (GET api/missions/{id}/log), and the alert history's
 *   "inspected by drone" entry marked as such.
 *
 * Uses only window.haulwatchConsole (app.js): its API call, catalog, time format (the
 * dataset's zone), map helpers and hooks. Data from the server goes into the page as
 * text only. Plain JavaScript, no build step, no external asset.
 */
"use strict";

(() => {
  const hc = window.haulwatchConsole;
  if (!hc || typeof hc.on !== "function") return; // an app.js without hooks: nothing to add to
  const $ = (id) => document.getElementById(id);
  const { t, el } = hc;

  const POLL_MS = 5000;
  const RECENT = 8; // missions done / failed listed under the queue
  const TERMINAL = new Set(["completed", "failed", "aborted", "refused"]);
  const FLOWN = new Set(["completed", "failed", "aborted"]);

  const fleet = {
    view: null, // last GET api/fleet answer
    recent: [], // last terminal missions (GET api/missions), without their flight records
    recentFor: null, // the flying missions when ``recent`` was read
    timer: null,
    busy: false,
    configured: null, // false after a 503
    seq: 0,
  };

  const flown = {
    alertId: null,
    missions: [], // flown missions of the alert, newest first
    evidence: new Map(), // mission_id -> evidence (null: none)
    shownId: null,
    layer: null,
    focused: null,
    seq: 0,
  };

  // ------------------------------------------------------------------ helpers
  function alertLink(alertId, kind) {
    const btn = el("button", {
      type: "button", class: "alert-link", "data-alert-id": alertId,
      "aria-label": t("fleet.open_alert", { alert: alertId }),
    }, kind ? `${hc.kindLabel(kind)} ${alertId}` : alertId);
    btn.addEventListener("click", () => hc.selectAlert(alertId));
    return btn;
  }

  /** The separator between two reasons: "；" in Chinese, "; " in English. */
  function reasonSep() {
    return hc.current().lang === "en" ? "; " : "；";
  }

  function chip(status, text) {
    return el("span", { class: "status-chip", "data-status": status, text });
  }

  function errorText(err) {
    if (err && err.status === 403) return t("fleet.forbidden");
    return t("fleet.action_failed", { error: err && err.message ? err.message : String(err) });
  }

  function batteryCell(pct) {
    const n = Number(pct);
    if (pct === null || pct === undefined || !Number.isFinite(n)) return "—";
    return el("span", { class: "battery" },
      el("meter", { min: 0, max: 100, low: 25, high: 60, optimum: 100, value: n,
        "aria-hidden": "true" }),
      `${hc.fmtNumber(n, 0)} %`);
  }

  // --------------------------------------------------------------- the fleet
  const flyingKey = (v) => (v && Array.isArray(v.flying) ? v.flying.map((f) => f.mission_id).sort().join(",") : "");

  /** The queue (small, polled); the recent missions (large: flight records) only when a
   *  flight started or ended, on request, or at first. */
  async function loadFleet({ withMissions = false } = {}) {
    const me = ++fleet.seq;
    const cur = hc.current();
    if (!cur.token) return;
    let view = null;
    try {
      view = await hc.api("api/fleet");
    } catch (err) {
      if (me !== fleet.seq) return;
      fleet.view = null;
      if (err.status === 503) {
        // No fleet in this service (HAULWATCH_DRONES is read at start): nothing to show or poll.
        fleet.configured = false;
        if (fleet.timer) window.clearInterval(fleet.timer);
        fleet.timer = null;
        $("fleet-panel").hidden = true;
        return;
      }
      $("fleet-panel").hidden = err.status === 401 || err.status === 403;
      const note = $("fleet-note");
      note.textContent = t("fleet.load_failed", { error: err.message });
      note.hidden = false;
      $("fleet-body").hidden = true;
      $("fleet-toggle").hidden = true;
      return;
    }
    let recent = fleet.recent;
    if (withMissions || fleet.recentFor === null || flyingKey(view) !== fleet.recentFor) {
      try {
        const page = await hc.api("api/missions?limit=20");
        recent = (page && Array.isArray(page.items) ? page.items : [])
          .filter((m) => m && TERMINAL.has(m.status) && m.status !== "refused").slice(0, RECENT)
          .map(({ flight_record: rec, ...m }) => ({ ...m, ended_at: rec && rec.ended_at }));
      } catch (_err) {
        recent = [];
      }
    }
    if (me !== fleet.seq || !hc.current().token) return;
    fleet.recentFor = flyingKey(view);
    fleet.configured = true;
    fleet.view = view;
    fleet.recent = recent;
    $("fleet-panel").hidden = false;
    $("fleet-note").hidden = true;
    $("fleet-toggle").hidden = false;
    $("fleet-body").hidden = $("fleet-toggle").getAttribute("aria-expanded") !== "true";
    renderFleet();
  }

  function renderFleet() {
    const v = fleet.view;
    if (!v) return;
    const rule = v.rule || {};
    $("fleet-rule").textContent = rule.enabled ? t("fleet.auto_on") : t("fleet.auto_off");
    $("fleet-updated").textContent = v.time ? t("fleet.updated", { time: hc.fmtTime(v.time) }) : "";

    const drones = $("fleet-drones").tBodies[0];
    drones.replaceChildren();
    for (const d of Array.isArray(v.drones) ? v.drones : []) {
      const state = String(d.state || "");
      // the drone room's reasons (code + params) in the catalog's words; its English text else
      const coded = (Array.isArray(d.unavailable_reasons) ? d.unavailable_reasons : [])
        .map((r) => (r ? hc.renderReason(r.code, r.params) : null)).filter(Boolean);
      const why = coded.length ? coded.join(reasonSep())
        : d.unavailable_because ? String(d.unavailable_because) : "";
      drones.append(el("tr", { "data-drone-id": d.drone_id, "data-state": state },
        el("td", { text: d.drone_id, title: d.connection || null }),
        el("td", { text: hc.siteText(d.dock_site_id) || "—", title: d.dock_site_id || null }),
        el("td", {}, chip(state, hc.tOr("fleet.state." + state, state)),
          why ? el("span", { class: "hold", text: why }) : null),
        el("td", {}, batteryCell(d.battery_pct)),
        el("td", { text: d.until ? hc.fmtTime(d.until) : "—" })));
    }

    const body = $("fleet-queue").tBodies[0];
    body.replaceChildren();
    const rows = [];
    for (const w of Array.isArray(v.waiting) ? v.waiting : []) {
      const notes = [];
      if (Number(w.attempts) > 0) notes.push(t("fleet.attempts", { n: w.attempts }));
      if (w.last_failure) {
        notes.push(hc.renderReason(w.last_failure_code, w.last_failure_params) || String(w.last_failure));
      }
      if (w.waiting_because) {
        notes.push(hc.renderReason(w.waiting_code, w.waiting_params) || String(w.waiting_because));
      }
      rows.push({ state: "waiting", alert: w.alert_id, kind: w.kind, drone: "", priority: w.priority,
        time: w.queued_at, note: notes.join(reasonSep()), actions: ["raise", "lower", "cancel"] });
    }
    for (const w of Array.isArray(v.timed) ? v.timed : []) {
      rows.push({ state: "timed", alert: w.alert_id, drone: "", priority: w.priority,
        time: w.not_before, note: t("fleet.not_before", { time: hc.fmtTime(w.not_before) }),
        actions: ["raise", "lower", "cancel"] });
    }
    for (const f of Array.isArray(v.flying) ? v.flying : []) {
      rows.push({ state: "flying", alert: f.alert_id, drone: f.drone_id, priority: null,
        time: null, note: f.mission_id || "", actions: ["abort"] });
    }
    for (const m of fleet.recent) {
      const ok = m.status === "completed";
      const drone = m.progress && m.progress.drone_id ? String(m.progress.drone_id) : "";
      rows.push({ state: ok ? "done" : "failed", alert: m.alert_id, drone, dock: m.dock_site_id,
        priority: null, time: m.ended_at || m.updated, note: ok ? m.mission_id : hc.missionReasonText(m) || m.mission_id,
        actions: [], mission: m.mission_id, status: m.status });
    }
    if (!rows.length) {
      body.append(el("tr", {}, el("td", { colspan: 7, class: "note", text: t("fleet.empty_queue") })));
    }
    for (const r of rows) {
      const actions = el("div", { class: "actions" });
      for (const a of r.actions) actions.append(actionButton(a, r));
      const stateText = hc.tOr("fleet.queue_state." + r.state, r.state)
        + (r.status && r.status !== "completed" && r.status !== "failed"
          ? ` (${hc.missionStatusLabel(r.status)})` : "");
      const droneText = r.drone || (r.dock ? hc.siteText(r.dock) : "—");
      body.append(el("tr", { "data-alert-id": r.alert, "data-state": r.state, "data-mission-id": r.mission || null },
        el("td", {}, chip(r.state, stateText)),
        el("td", {}, alertLink(r.alert, r.kind)),
        el("td", { text: droneText }),
        el("td", { class: "priority", text: r.priority === null || r.priority === undefined ? "—" : String(r.priority) }),
        el("td", { text: r.time ? hc.fmtTime(r.time) : "—" }),
        el("td", { class: "note", text: r.note || "", title: r.note || null }),
        el("td", {}, actions)));
    }
  }

  function actionButton(action, row) {
    const label = { raise: "fleet.raise", lower: "fleet.lower", cancel: "fleet.cancel", abort: "fleet.abort" }[action];
    const btn = el("button", {
      type: "button", "data-action": action,
      "aria-label": t(label + "_aria", { alert: row.alert }),
      title: t(label),
    }, action === "raise" ? "▲" : action === "lower" ? "▼" : t(label));
    btn.addEventListener("click", () => act(action, row, btn));
    return btn;
  }

  async function act(action, row, btn) {
    if (fleet.busy) return;
    fleet.busy = true;
    btn.disabled = true;
    const path = "api/fleet/queue/" + encodeURIComponent(row.alert);
    try {
      if (action === "raise" || action === "lower") {
        const priority = Math.max(-1000, Math.min(1000, (Number(row.priority) || 0) + (action === "raise" ? 1 : -1)));
        await hc.api(path, { method: "PATCH", body: { priority } });
        hc.announce(t("fleet.reprioritised", { alert: row.alert, priority }));
      } else {
        const answer = await hc.api(path, { method: "DELETE" });
        hc.announce(t(answer && answer.action === "abort" ? "fleet.aborted" : "fleet.cancelled", { alert: row.alert }));
      }
      hc.showMessage("");
    } catch (err) {
      hc.showMessage(errorText(err));
    } finally {
      fleet.busy = false;
    }
    await loadFleet();
    // Keep the keyboard where it was: on the same action of the same row when it is still there.
    const again = document.querySelector(
      `#fleet-queue tr[data-alert-id="${CSS.escape(row.alert)}"] button[data-action="${action}"]`);
    if (again) {
      again.focus();
    } else {
      const heading = $("fleet-heading");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  function startPolling() {
    stopPolling();
    loadFleet();
    fleet.timer = window.setInterval(() => {
      if (document.hidden) return;
      loadFleet();
    }, POLL_MS);
  }

  function stopPolling() {
    if (fleet.timer) window.clearInterval(fleet.timer);
    fleet.timer = null;
    fleet.seq += 1;
    fleet.view = null;
    fleet.recent = [];
    fleet.recentFor = null;
    $("fleet-panel").hidden = true;
  }

  // ------------------------------------------------- flown evidence on the alert
  function ensureLayer() {
    const lf = hc.map.lf();
    if (!lf) return null;
    if (!flown.layer) {
      if (!lf.getPane("droneEvidence")) lf.createPane("droneEvidence").style.zIndex = "425";
      flown.layer = L.layerGroup().addTo(lf);
    }
    return flown.layer;
  }

  function trackOf(ev) {
    const g = ev && ev.track && ev.track.geometry;
    if (!g || g.type !== "LineString" || !Array.isArray(g.coordinates)) return [];
    return g.coordinates.filter((c) => Array.isArray(c) && Number.isFinite(+c[0]) && Number.isFinite(+c[1]))
      .map((c) => [+c[0], +c[1], Number.isFinite(+c[2]) ? +c[2] : null]);
  }

  function photosOf(ev) {
    const fc = ev && ev.photos;
    const out = [];
    for (const f of (fc && Array.isArray(fc.features) ? fc.features : [])) {
      const c = f && f.geometry && f.geometry.coordinates;
      if (!Array.isArray(c) || !Number.isFinite(+c[0]) || !Number.isFinite(+c[1])) continue;
      out.push({ lon: +c[0], lat: +c[1], ...(f.properties || {}) });
    }
    return out;
  }

  function photoText(p, i) {
    const idx = Number.isFinite(Number(p.index)) ? Number(p.index) : i + 1;
    return t("fleet.photo_item", {
      index: idx,
      time: p.time_utc ? hc.fmtTime(p.time_utc) : "—",
      alt: Number.isFinite(Number(p.alt_rel_m)) && p.alt_rel_m !== null ? hc.fmtNumber(Number(p.alt_rel_m), 0) : "—",
      heading: Number.isFinite(Number(p.yaw_deg)) && p.yaw_deg !== null ? hc.fmtNumber(Number(p.yaw_deg), 0) : "—",
    });
  }

  /** Draw the shown mission's flown track and photo points (in the base map's datum). */
  function drawFlown() {
    const layer = ensureLayer();
    if (!layer) return;
    layer.clearLayers();
    const ev = flown.shownId ? flown.evidence.get(flown.shownId) : null;
    const cur = hc.current();
    if (!ev || !cur.detail || cur.detail.alert_id !== flown.alertId) return;
    const track = trackOf(ev);
    if (track.length >= 2) {
      const line = L.polyline(track.map((c) => hc.map.ll(c[0], c[1])), {
        className: "drone-track", pane: "droneEvidence", interactive: false,
      });
      layer.addLayer(line);
      hc.map.decorate(line, { "data-points": track.length, "data-mission-id": flown.shownId },
        t("fleet.track_title", { id: flown.shownId, points: track.length }));
    }
    photosOf(ev).forEach((p, i) => {
      const icon = el("span", {});
      const yaw = Number(p.yaw_deg);
      if (p.yaw_deg !== null && Number.isFinite(yaw)) {
        const tick = el("span", { class: "heading" });
        tick.style.transform = `rotate(${yaw}deg)`; // CSSOM, allowed by the page's CSP
        icon.append(tick);
      }
      const marker = L.marker(hc.map.ll(p.lon, p.lat), {
        icon: L.divIcon({ className: "drone-photo" + (flown.focused === i ? " focused" : ""), iconSize: [14, 14], html: icon }),
        pane: "droneEvidence", keyboard: false, interactive: false,
      });
      layer.addLayer(marker);
      hc.map.decorate(marker, { "data-index": p.index ?? i, "data-lon": p.lon, "data-lat": p.lat }, photoText(p, i));
    });
  }

  function renderEvidenceBox() {
    const box = $("drone-evidence");
    const ev = flown.shownId ? flown.evidence.get(flown.shownId) : null;
    const m = flown.missions.find((x) => x.mission_id === flown.shownId);
    const cur = hc.current();
    if (!ev || !m || !cur.detail || cur.detail.alert_id !== flown.alertId) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    box.dataset.missionId = m.mission_id;
    box.dataset.outcome = ev.outcome || m.status || "";
    const fields = $("drone-evidence-fields");
    fields.replaceChildren();
    const track = trackOf(ev);
    const photos = photosOf(ev);
    const maxAlt = track.reduce((a, c) => (c[2] !== null && c[2] > a ? c[2] : a), -Infinity);
    const outcome = ev.outcome || m.status;
    const rows = [
      ["outcome", t("fleet.ev_outcome"), chip(outcome, hc.missionStatusLabel(outcome))],
      ["mission", t("fleet.ev_mission"), m.mission_id],
      ["dock", t("fleet.ev_dock"), hc.siteText(ev.dock_site_id || m.dock_site_id) || "—", ev.dock_site_id || m.dock_site_id],
    ];
    const drone = m.progress && m.progress.drone_id;
    if (drone) rows.push(["drone", t("fleet.ev_drone"), String(drone)]);
    rows.push(["flown", t("fleet.ev_flown"), t("fleet.ev_flown_value", {
      from: ev.started_at ? hc.fmtTime(ev.started_at) : "—", to: ev.ended_at ? hc.fmtTime(ev.ended_at) : "—" })]);
    rows.push(["track", t("fleet.ev_track"), t("fleet.ev_track_value", {
      points: track.length, alt: Number.isFinite(maxAlt) ? hc.fmtNumber(maxAlt, 0) : "—" })]);
    rows.push(["photos", t("fleet.ev_photos"), t("fleet.ev_photos_value", { n: photos.length })]);
    if (ev.reason) rows.push(["reason", t("fleet.ev_reason"), hc.reasonText(ev.reason)]);
    for (const [key, label, value, hover] of rows) {
      const dd = el("dd", { "data-field": key, title: hover || null });
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      fields.append(el("dt", { text: label }), dd);
    }
    const rec = m.flight_record || {};
    $("drone-log").hidden = !rec.flight_log;
    $("drone-show-flight").disabled = track.length < 2 && !photos.length;
    const list = $("drone-photos");
    list.replaceChildren();
    photos.forEach((p, i) => {
      const btn = el("button", { type: "button", "data-index": p.index ?? i }, photoText(p, i));
      btn.addEventListener("click", () => focusPhoto(i));
      list.append(el("li", {}, btn));
    });
  }

  function focusPhoto(i) {
    const ev = flown.evidence.get(flown.shownId);
    const p = photosOf(ev)[i];
    if (!p) return;
    flown.focused = i;
    drawFlown();
    const lf = hc.map.lf();
    if (lf) lf.panTo(hc.map.ll(p.lon, p.lat), { animate: false });
  }

  function fitFlight() {
    const ev = flown.evidence.get(flown.shownId);
    const pts = [...trackOf(ev).map((c) => [c[0], c[1]]), ...photosOf(ev).map((p) => [p.lon, p.lat])];
    const d = hc.current().detail;
    if (d && Number.isFinite(d.lon) && Number.isFinite(d.lat)) pts.push([d.lon, d.lat]);
    if (!pts.length) return;
    const b = pts.reduce((a, [x, y]) => [Math.min(a[0], x), Math.min(a[1], y), Math.max(a[2], x), Math.max(a[3], y)],
      [Infinity, Infinity, -Infinity, -Infinity]);
    hc.map.fitBounds(b, { padPx: 40, minSpanM: 300 });
  }

  async function downloadLog() {
    const id = flown.shownId;
    const cur = hc.current();
    if (!id || !cur.token) return;
    try {
      const response = await fetch("api/missions/" + encodeURIComponent(id) + "/log", {
        headers: { Authorization: "Bearer " + cur.token }, cache: "no-store",
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: `${id}.tlog` });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (err) {
      hc.showMessage(t("fleet.no_log", { error: err.message }));
    }
  }

  /** The alert's flown missions and the newest one's evidence. */
  async function loadFlown(alertId) {
    const me = ++flown.seq;
    let missions = [];
    try {
      const page = await hc.api("api/missions?alert_id=" + encodeURIComponent(alertId) + "&limit=20");
      missions = (page && Array.isArray(page.items) ? page.items : [])
        .filter((m) => m && m.alert_id === alertId && FLOWN.has(m.status) && m.flight_record);
    } catch (_err) {
      missions = [];
    }
    if (me !== flown.seq || flown.alertId !== alertId) return;
    flown.missions = missions;
    const newest = missions[0];
    if (newest && !flown.evidence.has(newest.mission_id)) {
      let ev = null;
      try {
        ev = await hc.api("api/missions/" + encodeURIComponent(newest.mission_id) + "/evidence");
      } catch (_err) {
        ev = null;
      }
      if (me !== flown.seq || flown.alertId !== alertId) return;
      flown.evidence.set(newest.mission_id, ev);
    }
    flown.shownId = newest ? newest.mission_id : null;
    flown.focused = null;
    renderEvidenceBox();
    drawFlown();
  }

  /** Mark the history entries the drone wrote ("inspected by drone"). */
  function tagHistory(d) {
    const items = $("detail-history").children;
    const history = Array.isArray(d.history) ? d.history : [];
    history.forEach((h, i) => {
      const li = items[i];
      if (!li || h.by !== "drone" || li.classList.contains("drone-inspected")) return;
      li.classList.add("drone-inspected");
      li.dataset.by = "drone";
      li.prepend(el("span", { class: "drone-tag", text: t("fleet.inspected_tag") }));
    });
  }

  function onDetail(d) {
    if (!d) {
      flown.alertId = null;
      flown.missions = [];
      flown.shownId = null;
      flown.seq += 1;
      renderEvidenceBox();
      drawFlown();
      return;
    }
    tagHistory(d);
    if (d.alert_id !== flown.alertId) {
      flown.alertId = d.alert_id;
      flown.missions = [];
      flown.shownId = null;
      renderEvidenceBox();
      drawFlown();
      loadFlown(d.alert_id);
    } else {
      renderEvidenceBox();
    }
  }

  function onMission(m) {
    if (!m) return;
    // A finished flight: the queue changed, and its alert may be open.
    if (TERMINAL.has(m.status) && fleet.configured) loadFleet({ withMissions: true });
    if (m.alert_id === flown.alertId && FLOWN.has(m.status)) loadFlown(m.alert_id);
  }

  // ------------------------------------------------------------------ wiring
  function toggle() {
    const btn = $("fleet-toggle");
    const open = btn.getAttribute("aria-expanded") !== "true";
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    btn.dataset.i18n = open ? "fleet.collapse" : "fleet.expand";
    btn.textContent = t(btn.dataset.i18n);
    $("fleet-body").hidden = !open || !fleet.view;
  }

  function start() {
    hc.on("session", (on) => (on ? startPolling() : stopPolling()));
    hc.on("detail", onDetail);
    hc.on("datum", () => drawFlown());
    hc.on("mission", onMission);
    hc.on("lang", () => {
      renderFleet();
      renderEvidenceBox();
      drawFlown();
      const d = hc.current().detail;
      if (d) tagHistory(d);
    });
    $("fleet-toggle").addEventListener("click", toggle);
    $("fleet-refresh").addEventListener("click", () => loadFleet({ withMissions: true }));
    $("drone-log").addEventListener("click", downloadLog);
    $("drone-show-flight").addEventListener("click", fitFlight);
    // This file may run after the console connected or opened an alert (saved token).
    const cur = hc.current();
    if (cur.token) startPolling();
    if (cur.detail) onDetail(cur.detail);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
