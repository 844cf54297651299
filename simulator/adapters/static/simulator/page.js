// The dev phone page: keeps the phones' cards live from /simulator/state and sends the
// page's actions. Plain JS, no build step. Rendering is keyed (cards by number, calls and
// messages by SID, transcript lines by position) and only touches what changed, so a
// form being typed into keeps its text and an audio player keeps playing.
(function () {
  "use strict";

  const POLL_MS = 1000;
  const RETRY_MS = 3000;
  const FULL_REFRESH_EVERY = 15; // polls: the roster can change without a carrier event
  const MAX_ANNOUNCED = 3;
  const KEYPAD = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

  const base = document.body.dataset.base;
  const list = document.getElementById("phones");
  const template = document.getElementById("phone-template");
  const announcer = document.getElementById("announcer");
  const connection = document.getElementById("connection");
  const filterInput = document.getElementById("filter");
  const activeOnly = document.getElementById("active-only");
  const cards = new Map(); // number -> <li class="phone">
  let version = null;
  let polls = 0;
  let timer = null;
  let firstRender = true;
  let plpNumber = "";

  // --- Small DOM helpers ----------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setText(node, text) {
    const value = text === undefined || text === null ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function isSafeUrl(url) {
    // Only http(s) and same-site paths become players or links: never javascript: or data:.
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:";
    } catch (err) {
      return false;
    }
  }

  function clock(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return isNaN(date) ? String(iso) : date.toLocaleTimeString();
  }

  function seconds(value) {
    if (value === null || value === undefined || value === "") return "";
    const number = Number(value);
    return isNaN(number) ? String(value) : `${Math.round(number * 10) / 10} s`;
  }

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
  }

  function who(number, phone) {
    if (number === phone.number) return "this phone";
    if (number === plpNumber) return "the PLP";
    return number || "unknown";
  }

  // --- Rendering ------------------------------------------------------------------------

  function render(state) {
    version = state.version;
    plpNumber = state.plp_number;
    const news = [];
    const seen = new Set();
    let previous = null;
    for (const phone of state.phones) {
      seen.add(phone.number);
      let card = cards.get(phone.number);
      if (!card) {
        card = template.content.firstElementChild.cloneNode(true);
        card.dataset.number = phone.number;
        cards.set(phone.number, card);
        if (!firstRender) news.push(`New phone ${phone.name} ${phone.number}.`);
      }
      const expected = previous ? previous.nextElementSibling : list.firstElementChild;
      if (card !== expected) list.insertBefore(card, expected);
      updateCard(card, phone, news);
      previous = card;
    }
    for (const [number, card] of cards) {
      if (!seen.has(number)) {
        card.remove();
        cards.delete(number);
      }
    }
    updateKnownNumbers(state.phones);
    const placeholder = list.querySelector(":scope > li.none");
    if (placeholder) placeholder.hidden = state.phones.length > 0;
    applyFilter();
    if (!firstRender) announce(news);
    firstRender = false;
  }

  function updateKnownNumbers(phones) {
    // The "act as any number" field suggests every phone the page shows.
    const datalist = document.getElementById("known-numbers");
    const options = phones.filter((phone) => phone.role !== "plp")
      .map((phone) => [phone.number, phone.name]);
    const key = JSON.stringify(options);
    if (datalist.dataset.key === key) return;
    datalist.dataset.key = key;
    datalist.replaceChildren(...options.map(([number, name]) => {
      const option = el("option", "", name);
      option.value = number;
      return option;
    }));
  }

  function updateCard(card, phone, news) {
    card.dataset.role = phone.role;
    card.dataset.search = [phone.name, phone.number, ...phone.plps.map((p) => p.code),
      phone.officer || ""].join(" ").toLowerCase();
    card.dataset.active = phone.calls.length || phone.messages.length ? "1" : "";
    card.querySelector("article").setAttribute("aria-label", `Phone ${phone.name} ${phone.number}`);
    setText(card.querySelector(".phone-name"), phone.name);
    setText(card.querySelector(".phone-number"), phone.number);
    updateTags(card.querySelector(".phone-meta"), phone);
    const actor = phone.role !== "plp";
    card.querySelector(".behaviour-form").hidden = !actor;
    card.querySelector(".sms-form").hidden = !actor;
    if (phone.behaviour) updateBehaviour(card.querySelector(".behaviour-form"), phone.behaviour);
    updateCalls(card, phone, news);
    updateMessages(card, phone, news);
  }

  function updateTags(meta, phone) {
    const tags = phone.plps.map((plp) => [`${plp.code} · ${plp.role}`, ""]);
    if (phone.officer) tags.push([`officer · ${phone.officer}`, "tag-officer"]);
    if (phone.line === "phone2") tags.push(["second number", ""]);
    if (phone.phone_type === "fixed") tags.push(["landline", ""]);
    if (phone.opted_out) tags.push(["opted out (STOP)", "tag-warn"]);
    const key = JSON.stringify(tags);
    if (meta.dataset.key === key) return;
    meta.dataset.key = key;
    meta.replaceChildren(...tags.map(([text, extra]) => el("span", `tag ${extra}`.trim(), text)));
  }

  function updateBehaviour(form, behaviour) {
    setText(form.querySelector(".behaviour-note"), behaviour.explicit ? "set here" : "demo mix");
    // Never overwrite what the user is editing: the form is dirty until saved.
    if (form.dataset.dirty || form.contains(document.activeElement)) return;
    form.elements.kind.value = behaviour.kind;
    const keys = (behaviour.keys || []).join(" ");
    if (form.elements.keys.value !== keys) form.elements.keys.value = keys;
  }

  function updateCalls(card, phone, news) {
    const ol = card.querySelector(".call-list");
    card.querySelector(".calls .empty").hidden = phone.calls.length > 0;
    const seen = new Set();
    let previous = null;
    for (const call of phone.calls) {
      seen.add(call.sid);
      let item = ol.querySelector(`:scope > li[data-sid="${call.sid}"]`);
      if (!item) {
        item = newCall(call);
        if (!firstRender) {
          item.classList.add("fresh");
          const caller = call.from === phone.number ? `${phone.name} calls the PLP` :
            `The PLP calls ${phone.name}`;
          news.push(`${caller}: ${call.status}.`);
        }
      } else if (!firstRender && item.dataset.status !== call.status && !call.live) {
        news.push(`Call with ${phone.name} ended: ${call.status}.`);
      }
      const expected = previous ? previous.nextElementSibling : ol.firstElementChild;
      if (item !== expected) ol.insertBefore(item, expected);
      updateCall(item, call, phone);
      previous = item;
    }
    for (const item of [...ol.children]) {
      if (!seen.has(item.dataset.sid)) item.remove();
    }
  }

  function callTitle(call, phone) {
    return `Call from ${who(call.from, phone)} to ${who(call.to, phone)}`;
  }

  function newCall(call) {
    const item = el("li", "call");
    item.dataset.sid = call.sid;
    const head = el("p", "call-head");
    head.append(el("span", "call-title"), " ", el("span", "badge badge-live", "live"));
    const facts = el("p", "call-facts");
    const transcript = el("ol", "transcript");
    transcript.setAttribute("aria-label", "What happened on the call");
    const error = el("p", "call-error failure");
    const keypad = el("div", "keypad");
    keypad.setAttribute("role", "group");
    keypad.setAttribute("aria-label", "Keypad of this call");
    const keys = el("div", "keys");
    for (const key of KEYPAD) {
      const button = el("button", "key", key);
      button.type = "button";
      button.dataset.digits = key;
      button.setAttribute("aria-label", `Press ${key}`);
      keys.append(button);
    }
    const several = el("form", "keys-form");
    const label = el("label", "", "Keys ");
    const input = el("input");
    input.name = "digits";
    input.inputMode = "tel";
    input.autocomplete = "off";
    input.pattern = "[0-9*#]{1,32}";
    input.size = 6;
    label.append(input);
    const send = el("button", "", "Press these keys");
    send.type = "submit";
    several.append(label, " ", send);
    keypad.append(keys, several, el("p", "keypad-status", ""));
    keypad.lastChild.setAttribute("role", "status");
    item.append(head, facts, transcript, error, keypad);
    return item;
  }

  function updateCall(item, call, phone) {
    item.dataset.status = call.status;
    item.classList.toggle("is-live", Boolean(call.live));
    setText(item.querySelector(".call-title"), callTitle(call, phone));
    item.querySelector(".badge-live").hidden = !call.live;
    const facts = [call.status];
    if (call.answered_by) facts.push(`answered by ${call.answered_by}`);
    if (call.duration !== null && call.duration !== undefined) facts.push(seconds(call.duration));
    if (call.started_at) facts.push(clock(call.started_at));
    if (call.live && call.gathering) facts.push("waiting for keys");
    setText(item.querySelector(".call-facts"), facts.join(" · "));
    // error: the call failed; problems: status callbacks the app refused; warnings: what
    // Twilio tolerates but reports in its debugger.
    const troubles = [];
    if (call.error) troubles.push(`Failed: ${call.error}`);
    for (const problem of call.problems || []) troubles.push(`Problem: ${problem}`);
    for (const warning of call.warnings || []) troubles.push(`Warning: ${warning}`);
    setText(item.querySelector(".call-error"), troubles.join("\n"));
    updateTranscript(item.querySelector(".transcript"), call.events || []);
    // The page's keys reach a call only when a human (interactive) person is on the line.
    const interactive = call.direction === "inbound" ||
      (phone.behaviour && phone.behaviour.kind === "interactive");
    const keypad = item.querySelector(".keypad");
    const show = Boolean(call.live) && interactive;
    if (keypad.hidden === show) keypad.hidden = !show;
  }

  function updateTranscript(ol, events) {
    // Lines are compared by content: when the final transcript replaces the live one,
    // unchanged lines (and their audio players) stay.
    events.forEach((event, index) => {
      const key = JSON.stringify(event);
      const line = ol.children[index];
      if (line && line.dataset.key === key) return;
      const fresh = renderEvent(event);
      fresh.dataset.key = key;
      if (line) line.replaceWith(fresh);
      else ol.append(fresh);
    });
    while (ol.children.length > events.length) ol.lastElementChild.remove();
  }

  function renderEvent(event) {
    const line = el("li", `event event-${String(event.kind).replace(/[^a-z_]/gi, "")}`);
    const loop = event.loop && event.loop !== 1 ? ` (×${event.loop === 0 ? "∞" : event.loop})` : "";
    switch (event.kind) {
      case "said": {
        line.append(el("span", "event-label", "Said "), el("q", "said", event.text));
        const voice = [event.voice, event.language].filter(Boolean).join(", ");
        if (voice || loop) line.append(el("span", "muted", ` ${voice}${loop}`));
        break;
      }
      case "played":
        if (event.digits) {
          line.append(el("span", "event-label", `Played tones ${event.digits}`));
        } else {
          line.append(el("span", "event-label", `Played${loop} `), player(event.url, "Played audio"));
        }
        break;
      case "pressed":
        line.append(el("span", "event-label", "Pressed "), el("kbd", "", event.digits));
        break;
      case "gather_timed_out":
        line.append(el("span", "event-label", "Pressed nothing (the prompt timed out)"));
        break;
      case "recorded":
        line.append(el("span", "event-label", `Recorded ${seconds(event.duration_seconds)} `),
          player(event.url, "Recording"));
        break;
      case "recorded_silence":
        line.append(el("span", "event-label", `Recorded nothing (${seconds(event.seconds)} of silence)`));
        break;
      case "paused":
        line.append(el("span", "event-label", `Pause ${seconds(event.seconds)}`));
        break;
      case "redirected":
        line.append(el("span", "event-label", "Redirected to "), el("code", "", event.url));
        break;
      case "hung_up":
        line.append(el("span", "event-label", `Hung up by ${event.by === "app" ? "the app" :
          event.by === "person" ? "the person" : "the carrier (end of TwiML)"}`));
        break;
      case "rejected":
        line.append(el("span", "event-label failure", `Rejected (${event.reason})`));
        break;
      case "failed":
        line.classList.add("failure");
        line.append(el("strong", "", "Failed: "), el("span", "", event.reason));
        break;
      default: {
        const rest = Object.assign({}, event);
        delete rest.kind;
        line.append(el("span", "event-label", `${event.kind} `), el("code", "", JSON.stringify(rest)));
      }
    }
    return line;
  }

  function player(url, label) {
    if (!isSafeUrl(url)) return el("code", "", url);
    const wrap = el("span", "player");
    const audio = el("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = url;
    audio.setAttribute("aria-label", label);
    const link = el("a", "muted", "file");
    link.href = url;
    wrap.append(audio, " ", link);
    return wrap;
  }

  function updateMessages(card, phone, news) {
    const ol = card.querySelector(".sms-list");
    card.querySelector(".sms .empty").hidden = phone.messages.length > 0;
    const seen = new Set();
    let previous = null;
    for (const message of phone.messages) {
      seen.add(message.sid);
      let item = ol.querySelector(`:scope > li[data-sid="${message.sid}"]`);
      if (!item) {
        item = newMessage(message, phone);
        if (!firstRender) {
          item.classList.add("fresh");
          const sender = message.from === phone.number ? phone.name : "the PLP";
          const to = message.from === phone.number ? "the PLP" : phone.name;
          news.push(`SMS from ${sender} to ${to}: ${message.body}`);
        }
      }
      const expected = previous ? previous.nextElementSibling : ol.firstElementChild;
      if (item !== expected) ol.insertBefore(item, expected);
      updateMessage(item, message);
      previous = item;
    }
    for (const item of [...ol.children]) {
      if (!seen.has(item.dataset.sid)) item.remove();
    }
  }

  function newMessage(message, phone) {
    const mine = message.from === phone.number;
    const item = el("li", `bubble ${mine ? "bubble-out" : "bubble-in"}`);
    item.dataset.sid = message.sid;
    const body = el("p", "bubble-body");
    body.append(el("span", "visually-hidden", mine ? "Sent by this phone: " : "Received: "),
      el("span", "", message.body));
    item.append(body, el("p", "bubble-meta"));
    return item;
  }

  function updateMessage(item, message) {
    const meta = [message.status, clock(message.at)];
    if (message.by === "carrier") meta.push("sent by the carrier");
    if (message.opt_out_type) meta.push(`opt-out: ${message.opt_out_type}`);
    if (message.error_code) meta.push(`error ${message.error_code}`);
    if (message.error) meta.push(message.error);
    const node = item.querySelector(".bubble-meta");
    setText(node, meta.filter(Boolean).join(" · "));
    node.classList.toggle("failure", ["undelivered", "failed"].includes(message.status) ||
      Boolean(message.error_code) || Boolean(message.error));
  }

  function applyFilter() {
    const words = filterInput.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const card of cards.values()) {
      const match = words.every((word) => card.dataset.search.includes(word)) &&
        (!activeOnly.checked || card.dataset.active);
      card.hidden = !match;
      if (match) shown += 1;
    }
    const total = cards.size;
    setText(document.getElementById("phone-count"),
      shown === total ? `(${total})` : `(${shown} of ${total})`);
  }

  function announce(news) {
    if (!news.length) return;
    const shown = news.slice(0, MAX_ANNOUNCED);
    if (news.length > MAX_ANNOUNCED) shown.push(`And ${plural(news.length - MAX_ANNOUNCED, "more event")}.`);
    announcer.replaceChildren(...shown.map((text) => el("p", "", text)));
  }

  // --- Polling --------------------------------------------------------------------------

  async function poll() {
    timer = null;
    const full = polls % FULL_REFRESH_EVERY === 0;
    polls += 1;
    let delay = POLL_MS;
    try {
      const query = full || version === null ? "" : `?since=${version}`;
      const response = await fetch(`${base}/state${query}`, {
        headers: { Accept: "application/json" }, cache: "no-store",
      });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const state = await response.json();
      if (state.changed) render(state);
      setConnection("Live: updated every second.", false);
    } catch (err) {
      setConnection(`Connection lost (${err.message}); retrying…`, true);
      delay = RETRY_MS;
    }
    schedule(delay);
  }

  function schedule(delay) {
    if (timer !== null) clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(poll, delay);
  }

  function setConnection(text, failed) {
    setText(connection, text);
    connection.classList.toggle("failure", failed);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) schedule(0);
  });

  // --- Actions --------------------------------------------------------------------------

  async function post(path, data) {
    const response = await fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(data),
      credentials: "same-origin",
    });
    let body = {};
    try {
      body = await response.json();
    } catch (err) {
      body = {};
    }
    if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
    schedule(0); // show the effect without waiting for the next poll
    return body;
  }

  function report(node, text, failed) {
    setText(node, text);
    node.classList.toggle("failure", Boolean(failed));
  }

  async function act(statusNode, button, work) {
    if (button) button.disabled = true;
    try {
      report(statusNode, await work(), false);
    } catch (err) {
      report(statusNode, `Refused: ${err.message}`, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function cardOf(node) {
    return node.closest("li.phone");
  }

  document.addEventListener("input", (event) => {
    const form = event.target.closest(".behaviour-form");
    if (form) form.dataset.dirty = "1";
    if (event.target === filterInput || event.target === activeOnly) applyFilter();
  });
  activeOnly.addEventListener("change", applyFilter);

  document.addEventListener("submit", (event) => {
    const form = event.target;
    const card = cardOf(form);
    if (form.classList.contains("behaviour-form") && card) {
      event.preventDefault();
      const status = card.querySelector(".card-status");
      act(status, form.querySelector("button[type=submit]"), async () => {
        const kind = form.elements.kind.value;
        await post("/behaviour", { number: card.dataset.number, kind, keys: form.elements.keys.value });
        delete form.dataset.dirty;
        return `Behaviour saved: ${kind}.`;
      });
    } else if (form.classList.contains("sms-form") && card) {
      event.preventDefault();
      const status = card.querySelector(".card-status");
      act(status, form.querySelector("button[type=submit]"), async () => {
        await post("/sms", { from: card.dataset.number, body: form.elements.body.value });
        form.elements.body.value = "";
        return "SMS sent to the PLP number.";
      });
    } else if (form.classList.contains("keys-form")) {
      event.preventDefault();
      const call = form.closest("li.call");
      const input = form.elements.digits;
      act(form.parentElement.querySelector(".keypad-status"), form.querySelector("button"),
        async () => {
          await post("/keys", { call_sid: call.dataset.sid, digits: input.value.trim() });
          const pressed = input.value.trim();
          input.value = "";
          return `Pressed ${pressed}.`;
        });
    } else if (form.id === "act-form") {
      event.preventDefault();
      const status = document.getElementById("act-status");
      act(status, form.querySelector("button[type=submit]"), async () => {
        await post("/sms", { from: form.elements.from.value.trim(), body: form.elements.body.value });
        form.elements.body.value = "";
        return `SMS sent to the PLP number as ${form.elements.from.value.trim()}.`;
      });
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("key")) {
      const call = button.closest("li.call");
      const status = button.closest(".keypad").querySelector(".keypad-status");
      act(status, null, async () => {
        await post("/keys", { call_sid: call.dataset.sid, digits: button.dataset.digits });
        return `Pressed ${button.dataset.digits}.`;
      });
    } else if (button.dataset.action === "call") {
      const card = cardOf(button);
      const form = document.getElementById("act-form");
      const from = card ? card.dataset.number : form.elements.from.value.trim();
      const status = card ? card.querySelector(".card-status") : document.getElementById("act-status");
      act(status, button, async () => {
        const answer = await post("/call", { from });
        return `Calling the PLP number from ${from} (call ${answer.call_sid}): ` +
          "use the keypad on the live call below.";
      });
    }
  });

  // --- Start ----------------------------------------------------------------------------

  for (const card of list.querySelectorAll(":scope > li.phone")) cards.set(card.dataset.number, card);
  render(JSON.parse(document.getElementById("initial-state").textContent));
  polls = 1; // the page came with a full state
  schedule(POLL_MS);
}());
