/* calltrack number swap. <script src="https://HOST/ct.js" data-site="SITE_KEY" async></script>
   Options: data-consent="required" (wait for calltrack.consent(true)), data-forms="auto"
   (post forms with a phone or email field to /v1/forms), data-skip-class="cls" (leave
   elements with this class alone, e.g. Google's phone_conversion_class), data-api="URL"
   (the calltrack server, when ct.js is served from elsewhere).
   On any failure the page keeps its own number. */
(function (w, d) {
  "use strict";
  if (w.calltrack && w.calltrack.v) return;
  var me = d.currentScript || d.querySelector("script[data-site]");
  if (!me) return;
  var site = me.getAttribute("data-site");
  var base = me.getAttribute("data-api") || me.src.replace(/\/ct\.js(\?.*)?$/, "");
  var skip = me.getAttribute("data-skip-class");
  var consent = me.getAttribute("data-consent") !== "required";
  var KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "gclid", "gbraid", "wbraid", "msclkid", "yclid", "fbclid"];
  var CLICKS = { gclid: 1, gbraid: 1, wbraid: 1, msclkid: 1, yclid: 1, fbclid: 1 };
  var DAY = 864e5, SESSION = 18e5;
  var ans = null, shown = [], site_num = null, timer = null, queued = false, asked = 0;

  function now() { return new Date().getTime(); }
  function get(k) { try { return JSON.parse(localStorage.getItem(k)); } catch (e) { return null; } }
  function put(k, v) { if (!consent) return; try { localStorage.setItem(k, JSON.stringify(v)); } catch (e) {} }
  function cookie(k) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(k, v, ms) {
    if (!consent) return;
    d.cookie = k + "=" + encodeURIComponent(v) + "; max-age=" + Math.round(ms / 1e3) + "; path=/; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
  }
  function rid() {
    var a = new Uint8Array(12), s = "";
    (w.crypto || w.msCrypto).getRandomValues(a);
    for (var i = 0; i < a.length; i++) s += ("0" + a[i].toString(16)).slice(-2);
    return s;
  }

  // -- who the visitor is and what brought them ---------------------------------------------
  function visitor() {
    if (!consent) return {};
    var vid = cookie("ct_vid") || get("ct_vid") || rid();
    var sid = cookie("ct_sid") || rid();
    setCookie("ct_vid", vid, 730 * DAY); put("ct_vid", vid);
    setCookie("ct_sid", sid, SESSION); // a session ends after 30 minutes without a page
    return { vid: vid, sid: sid };
  }
  function touch() {
    // First touch wins, unless this landing brings a new ad click or new tags.
    var q = {}, has = false, click = false, p = new URLSearchParams(location.search);
    KEYS.forEach(function (k) { var v = p.get(k); if (v) { q[k] = v.slice(0, 200); has = true; click = click || CLICKS[k]; } });
    var ref = d.referrer, external = ref && ref.indexOf(location.origin) !== 0;
    var stored = get("ct_touch");
    if (stored && !click && (!has || sameTags(stored.q, q))) return stored;
    var t = { q: q, ref: external ? ref.slice(0, 2000) : "", url: location.href.slice(0, 2000) };
    put("ct_touch", t);
    return t;
  }
  function sameTags(a, b) { return KEYS.every(function (k) { return (a[k] || "") === (b[k] || ""); }); }

  // -- asking for the number -----------------------------------------------------------------
  function ask(done) {
    var t = touch(), who = visitor(), p = new URLSearchParams({ site: site }), seq = ++asked;
    var key = JSON.stringify([site, t.q, who.vid || ""]);
    var cached = get("ct_num");
    if (consent && cached && cached.key === key && cached.exp > now()) return done(cached.a);
    if (who.vid) { p.set("vid", who.vid); p.set("sid", who.sid); } else p.set("consent", "0");
    p.set("url", t.url); if (t.ref) p.set("ref", t.ref);
    for (var k in t.q) p.set(k, t.q[k]);
    var ctl = w.AbortController ? new AbortController() : null;
    var stop = setTimeout(function () { if (ctl) ctl.abort(); }, 2000);
    fetch(base + "/v1/number?" + p, { credentials: "omit", signal: ctl && ctl.signal })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (a) {
        clearTimeout(stop);
        if (!a || !a.phoneNumber || seq !== asked) return; // a later request decides
        if (a.vid && consent) { setCookie("ct_vid", a.vid, 730 * DAY); put("ct_vid", a.vid); }
        put("ct_num", { key: key, a: a, exp: now() + Math.min(a.ttl || 0, 1800) * 1e3 * 0.5 });
        done(a);
      })["catch"](function () { clearTimeout(stop); }); // the page keeps its number
  }

  // -- finding and replacing the number ------------------------------------------------------
  function digits(s) { return String(s).replace(/\D/g, ""); }
  // The country code and national number of an E.164 number whose national format we know.
  function split(e164, national) {
    var all = digits(e164), nat = digits(national).replace(/^0+/, "");
    if (nat && all.slice(-nat.length) === nat) return { cc: all.slice(0, all.length - nat.length), nsn: nat };
    return { cc: "", nsn: all };
  }
  // Digit strings that mean this number when written: national, with trunk 0, +cc, 00cc, 1-…
  function forms(n) { return [n.nsn, "0" + n.nsn, n.cc + n.nsn, "00" + n.cc + n.nsn]; }
  var SEP = "[\\s().\\-\\u00a0]*";
  // One pattern for the numbers to replace: each with or without its country code (+cc,
  // 00cc, cc) or a trunk 0, any separators between digits, never inside a longer digit run.
  function matcher(from) {
    var alts = from.map(function (n) {
      return "(?:(?:\\+|00)?" + n.cc + SEP + ")?(?:0" + SEP + ")?" + n.nsn.split("").join(SEP);
    });
    return new RegExp("(^|[^\\d+])(\\(?(?:" + alts.join("|") + "))(?!\\d)", "g");
  }
  function fit(written, to) {
    // Keep the writer's style: swap the national digits in place, right to left.
    var out = written.split(""), j = to.nsn.length - 1;
    for (var i = out.length - 1; i >= 0 && j >= 0; i--) if (/\d/.test(out[i])) out[i] = to.nsn[j--];
    return out.join("");
  }
  function replaceIn(text, re, from, to) {
    var changed = false;
    var res = text.replace(re, function (m, pre, num) {
      var dg = digits(num), hit = null;
      from.forEach(function (n) { if (!hit && dg.slice(-n.nsn.length) === n.nsn) hit = n; });
      if (!hit) return m;
      var out = hit.nsn.length === to.nsn.length && hit.cc === to.cc ? fit(num, to) : null;
      if (!out) out = /^\+|^00/.test(num) ? ans.phoneNumber : ans.formattedPhoneNumber;
      changed = true;
      return pre + out;
    });
    return changed ? res : null;
  }
  var SKIP = { SCRIPT: 1, STYLE: 1, TEXTAREA: 1, INPUT: 1, SELECT: 1, OPTION: 1, NOSCRIPT: 1, TEMPLATE: 1, CODE: 1 };
  function skipped(el) {
    for (; el && el !== d.body; el = el.parentNode) {
      if (el.nodeType !== 1) continue;
      if (SKIP[el.nodeName] || el.isContentEditable || (el.classList && (el.classList.contains("ct-no-swap") || (skip && el.classList.contains(skip))))) return true;
    }
    return false;
  }
  function swap() {
    queued = false;
    if (!ans || !d.body) return;
    var to = split(ans.phoneNumber, ans.formattedPhoneNumber);
    var from = shown.filter(function (n) { return n.nsn !== to.nsn || n.cc !== to.cc; });
    if (!from.length) return;
    var links = d.querySelectorAll('a[href^="tel:"], a[href^="TEL:"]');
    for (var i = 0; i < links.length; i++) {
      var a = links[i], dg = digits(a.getAttribute("href").replace(/[;,].*$/, ""));
      if (skipped(a)) continue;
      for (var k = 0; k < from.length; k++) if (forms(from[k]).indexOf(dg) >= 0) { a.setAttribute("href", "tel:" + ans.phoneNumber); break; }
    }
    var walk = d.createTreeWalker(d.body, 4, null), node, edits = [], re = matcher(from);
    while ((node = walk.nextNode())) {
      if (!/\d/.test(node.nodeValue) || skipped(node.parentNode)) continue;
      var v = replaceIn(node.nodeValue, re, from, to);
      if (v !== null) edits.push([node, v]);
    }
    edits.forEach(function (e) { e[0].nodeValue = e[1]; });
    d.querySelectorAll("[data-ct-number]").forEach(function (el) {
      if (el.textContent !== ans.formattedPhoneNumber) el.textContent = ans.formattedPhoneNumber;
    });
  }
  function schedule() { if (!queued) { queued = true; (w.requestAnimationFrame || setTimeout)(swap); } }

  function got(a) {
    if (!site_num && a.siteNumber) site_num = split(a.siteNumber, a.siteFormattedNumber || a.siteNumber);
    if (site_num && shown.length === 0) shown.push(site_num);
    if (ans && ans.phoneNumber !== a.phoneNumber) shown.push(split(ans.phoneNumber, ans.formattedPhoneNumber));
    ans = a;
    if (d.body) swap(); else d.addEventListener("DOMContentLoaded", swap);
    beat();
  }

  // -- holding the lease while the page is open ----------------------------------------------
  function ping(leaving) {
    var c = visitor();
    if (!ans || !ans.lease || !c.vid) return;
    var body = JSON.stringify({ site: site, vid: c.vid, sid: c.sid });
    if (leaving && navigator.sendBeacon) return navigator.sendBeacon(base + "/v1/ping?site=" + site, body);
    fetch(base + "/v1/ping?site=" + site, { method: "POST", body: body, credentials: "omit", keepalive: true })["catch"](function () {});
  }
  function beat() {
    clearInterval(timer);
    if (!ans || !ans.lease || d.visibilityState === "hidden") return;
    timer = setInterval(ping, Math.max(30, Math.min(300, (ans.ttl || 1800) / 3)) * 1e3);
  }
  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "visible" && ans && ans.lease) { ping(); beat(); } else clearInterval(timer);
  });
  w.addEventListener("pagehide", function () { ping(true); });

  // -- forms -----------------------------------------------------------------------------------
  if (me.getAttribute("data-forms") === "auto") {
    d.addEventListener("submit", function (ev) {
      if (!consent) return; // nothing leaves the page before consent
      try {
        var f = ev.target, fields = {}, contact = false;
        for (var i = 0; i < f.elements.length; i++) {
          var el = f.elements[i], n = el.name || el.id, t = (el.type || "").toLowerCase();
          var ac = (el.getAttribute("autocomplete") || "").toLowerCase();
          if (!n || t === "password" || t === "file" || t === "submit" || t === "hidden" || ac.indexOf("cc-") === 0 ||
            /card|cc[-_ ]?(num|exp|csc|cvc)|cvv|cvc|csc|security.?code|\bpin\b|otp|ssn|iban|passw/i.test(n)) continue;
          if ((t === "checkbox" || t === "radio") && !el.checked) continue;
          if (t === "tel" || t === "email" || /phone|tel|mail/i.test(n)) contact = contact || !!el.value;
          fields[n] = String(el.value).slice(0, 2000);
        }
        if (!contact) return;
        var c = visitor();
        var body = JSON.stringify({ id: rid(), site: site, vid: c.vid, sid: c.sid, url: location.href, fields: fields });
        if (!(navigator.sendBeacon && navigator.sendBeacon(base + "/v1/forms?site=" + site, body)))
          fetch(base + "/v1/forms?site=" + site, { method: "POST", body: body, credentials: "omit", keepalive: true })["catch"](function () {});
      } catch (e) {} // never stand between a visitor and their form
    }, true);
  }

  // -- single-page sites and the public API ----------------------------------------------------
  function routed() { setTimeout(function () { ask(got); }, 0); }
  ["pushState", "replaceState"].forEach(function (m) {
    var orig = history[m];
    if (orig) history[m] = function () { var r = orig.apply(this, arguments); routed(); return r; };
  });
  w.addEventListener("popstate", routed);
  w.calltrack = {
    v: 1,
    run: function () { if (ans) swap(); else ask(got); },
    number: function () { return ans ? ans.phoneNumber : null; },
    consent: function (yes) { if (yes && !consent) { consent = true; ask(got); } }
  };
  if (w.MutationObserver) {
    var start = function () { new MutationObserver(schedule).observe(d.body, { childList: true, subtree: true, characterData: true }); };
    if (d.body) start(); else d.addEventListener("DOMContentLoaded", start);
  }
  ask(got);
})(window, document);
