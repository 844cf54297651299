"""Deutsch: every word the system says or texts in German."""

TEXTS = {
    "name.plp": "KPP {plp}",
    "sms.alert": "{exercise}KPP {plp}, Nachricht der Polizei: {message} "
    "Antworten Sie 1 zur Bestätigung. Ref {ref}",
    "sms.exercise_prefix": "ÜBUNG - ",
    "email.subject": "{exercise}Nachricht der Polizei für {plp} – Ref. {ref}",
    "email.exercise_prefix": "[ÜBUNG] ",
    "email.exercise_notice": "ÜBUNG – Diese Nachricht ist Teil einer Übung. "
    "Es handelt sich nicht um einen echten Alarm.",
    "email.intro": "Die Polizei hat den Mitgliedern von {plp} folgende Nachricht gesendet:",
    "email.source": "Quelle: Polizei ({zone})",
    "email.reference": "Referenz: {ref}",
    "email.confirm_intro": "Bitte bestätigen Sie, dass Sie diese Nachricht erhalten haben. "
    "Ein Klick genügt:",
    "email.confirm_button": "Ich bestätige den Empfang",
    "email.link_fallback": "Falls die Schaltfläche nicht funktioniert, kopieren Sie diese "
    "Adresse in Ihren Browser:",
    "email.footer": "Sie erhalten diese E-Mail als Mitglied einer lokalen "
    "Präventionspartnerschaft ({plp}). Bitte antworten Sie nicht auf diese "
    "E-Mail. Im Notfall rufen Sie 101 (Polizei) oder 112 an.",
    # Level 1: the police's alert put at the coordinators' disposal.
    "sms.release_request": "{exercise}KPP {plp}: Alarm der Polizei Ref {ref} für {members} "
    "Mitglieder: {message} Antworten Sie JA {ref} zum Verbreiten, "
    "NEIN {ref} zum Ablehnen.",
    "sms.escalation": "{exercise}KPP {plp}: Der Alarm der Polizei Ref {ref} wartet seit "
    "{minutes} Min. ohne Antwort eines Koordinators: {message} Antworten "
    "Sie JA {ref} zum Verbreiten, NEIN {ref} zum Ablehnen.",
    "sms.released_by": "Alarm Ref {ref} von {name} an {members} Mitglieder verbreitet.",
    "sms.rejected_by": "Alarm Ref {ref} von {name} abgelehnt. Er wird nicht verbreitet.",
    "sms.expired": "Alarm Ref {ref} ohne Verbreitung abgelaufen.",
    "sms.all_clear": "{exercise}KPP {plp}, Ende des Alarms Ref {ref}: {message}",
    # Level 2: what a member hears when the alert call is answered.
    "voice.exercise_prefix": "Dies ist eine Übung. ",
    "voice.alert_intro": "{exercise}Dringende Nachricht der Polizei für die KPP {plp}.",
    "voice.alert_prompt": "Drücken Sie die 1 zur Bestätigung. Drücken Sie die 0, um die "
    "Nachricht erneut zu hören.",
    "voice.ack_confirmed": "Danke. Ihre Bestätigung ist gespeichert. Auf Wiederhören.",
    "voice.no_input": "Wir haben keine Antwort erhalten. Auf Wiederhören.",
    "voice.goodbye": "Auf Wiederhören.",
    "voice.alert_over": "Diese Nachricht ist nicht mehr aktuell. Danke und auf Wiederhören.",
    "voice.machine_message": "{exercise}Nachricht der Polizei für die KPP {plp}. {message} "
    "Zur Bestätigung antworten Sie 1 per SMS oder rufen Sie diese "
    "Nummer zurück. Referenz {ref}.",
    "voice.apology": "Entschuldigung, wegen eines technischen Problems können wir nicht "
    "fortfahren. Auf Wiederhören.",
    # Lebenszyklus: Verbreitung nach der Frist der Charta; Seite des E-Mail-Links.
    "sms.released_auto": "Alarm Ref {ref} automatisch an {members} Mitglieder verbreitet: "
    "kein Koordinator hat rechtzeitig geantwortet.",
    "web.title": "Bestätigung einer Nachricht der Polizei",
    "web.confirmed": "Danke. Ihre Bestätigung ist gespeichert.",
    "web.already_confirmed": "Ihre Bestätigung war bereits gespeichert. Danke.",
    "web.link_invalid": "Dieser Bestätigungslink ist ungültig. Prüfen Sie, ob die ganze "
    "Adresse kopiert wurde.",
    "web.link_expired": "Dieser Bestätigungslink ist abgelaufen.",
    "web.alert_over": "Diese Nachricht ist nicht mehr aktuell: eine Bestätigung ist nicht "
    "mehr nötig.",
    # IVR call trees (issue 6): release call, inbound calls, recorded messages.
    "voice.coordinator_intro": "{exercise}Dringende Nachricht Ihres Koordinators für die "
    "KPP {plp}.",
    "voice.machine_intro": "{exercise}Dringende Nachricht für die KPP {plp}.",
    "voice.machine_how_to_confirm": "Zur Bestätigung antworten Sie 1 per SMS, oder rufen Sie "
    "diese Nummer zurück. Referenz {ref}.",
    "voice.release_intro": "{exercise}Guten Tag. Hier ist KPP Alarm. Die Polizei bittet, eine "
    "Nachricht an die Mitglieder der KPP {plp} zu senden. Referenz {ref}. "
    "Hier ist die Nachricht.",
    "voice.release_reach": "Diese Nachricht ginge an {members} Mitglieder.",
    "voice.release_prompt": "Drücken Sie die 1, um sie zu senden. Drücken Sie die 2, um sie "
    "abzulehnen. Drücken Sie die 0, um sie noch einmal zu hören.",
    "voice.release_machine": "{exercise}Guten Tag. Hier ist KPP Alarm. Eine Nachricht der "
    "Polizei für die KPP {plp} wartet auf Ihre Entscheidung. "
    "Referenz {ref}. Um sie zu senden, antworten Sie JA und die "
    "Referenz per SMS, oder rufen Sie diese Nummer zurück.",
    "voice.released": "Danke. Die Nachricht ist an {members} Mitglieder gesendet.",
    "voice.rejected": "Danke. Die Nachricht ist abgelehnt. Sie wird nicht gesendet.",
    "voice.was_released": "Diese Nachricht wurde schon gesendet.",
    "voice.was_rejected": "Diese Nachricht wurde schon abgelehnt.",
    "voice.not_allowed": "Sie können über diese Nachricht nicht entscheiden.",
    "voice.stranger": "Guten Tag. Sie haben einen Alarmdienst angerufen. Diese Nummer nimmt "
    "keine Anrufe an. Danke und auf Wiederhören.",
    "voice.pin_prompt": "Guten Tag. Geben Sie Ihren Geheimcode ein, dann die Rautetaste.",
    "voice.pin_wrong": "Dieser Code ist nicht richtig. Sie haben noch {left} Versuche.",
    "voice.pin_locked": "Zu viele Versuche. Diese Nummer ist für {minutes} Minuten gesperrt. "
    "Auf Wiederhören.",
    "voice.coordinator_menu": "Um eine neue Nachricht aufzunehmen, drücken Sie die 1. "
    "Für die wartenden Nachrichten drücken Sie die 2. "
    "Für den Stand der letzten Nachricht drücken Sie die 3.",
    "voice.invalid_choice": "Diese Wahl ist nicht gültig.",
    "voice.record_prompt": "Sprechen Sie nach dem Signalton Ihre Nachricht. Sie haben "
    "2 Minuten. Drücken Sie danach die Rautetaste.",
    "voice.record_empty": "Wir haben nichts aufgenommen.",
    "voice.record_playback": "Hier ist Ihre Nachricht.",
    "voice.record_review": "Um sie zu senden, drücken Sie die 1. Um sie neu aufzunehmen, "
    "drücken Sie die 2. Um abzubrechen, drücken Sie die 3.",
    "voice.record_again_prompt": "Um neu aufzunehmen, drücken Sie die 2. "
    "Um abzubrechen, drücken Sie die 3.",
    "voice.urgency_prompt": "Für eine dringende Nachricht drücken Sie die 1. "
    "Für eine nicht dringende Nachricht drücken Sie die 2.",
    "voice.record_wait": "Einen Moment, bitte.",
    "voice.record_failed": "Entschuldigung. Ihre Aufnahme konnte nicht gespeichert werden.",
    "voice.record_not_ready": "Ihre Aufnahme ist noch nicht bereit. Versuchen Sie es in "
    "einigen Minuten noch einmal.",
    "voice.record_sent": "Ihre Nachricht ist an {members} Mitglieder gesendet. Referenz {ref}.",
    "voice.record_cancelled": "Ihre Nachricht ist abgebrochen. Sie wird nicht gesendet.",
    "voice.pending_none": "Keine Nachricht wartet auf eine Entscheidung.",
    "voice.next_alert": "Nächste Nachricht.",
    "voice.counts": "Nachricht {ref}. {confirmed} Bestätigungen. {reached} Mitglieder "
    "erreicht, ohne Bestätigung. {pending} ausstehend. {unreachable} nicht "
    "erreichbar.",
    "voice.counts_none": "Es gibt noch keine Nachricht.",
    "voice.member_none": "Es gibt keine laufende Nachricht für Ihre KPP.",
    "voice.ack_thanks": "Danke. Ihre Bestätigung ist gespeichert.",
    "sms.recorded_message": "Sprachnachricht Ihres Koordinators. Rufen Sie die Nummer der KPP "
    "an, um sie zu hören.",
    # Recordings (issue 6): the link to a recorded message in the alert e-mail.
    "email.recording_intro": "Hören Sie die Sprachnachricht Ihres Koordinators:",
    # SMS-Befehle (Issue 7): Antworten auf SMS an die Nummer der KPP.
    "sms.cmd.not_allowed": "Befehl abgelehnt. Diese Nummer darf ihn nicht verwenden.",
    "sms.cmd.usage_member": "KPP: Antworten Sie nach einem Alarm 1 zur Bestätigung (oder 1 und "
    "die Referenz). STOP: keine SMS mehr. HILFE: diese Hilfe.",
    "sms.cmd.usage_coordinator": "KPP: JA <Ref> verbreitet einen Alarm, NEIN <Ref> lehnt ihn ab. "
    "ALARM <PIN> <Nachricht> alarmiert Ihre KPP. STATUS <Ref> zeigt "
    "den Stand. 1 bestätigt.",
    "sms.cmd.usage_officer": "KPP: ALARM <PIN> <KPP oder Zone>,<weiterer Code> <Nachricht> "
    "erstellt einen Alarm. STATUS <Ref> zeigt den Stand.",
    "sms.cmd.pin_missing": "PIN fehlt.",
    "sms.cmd.pin_wrong": "Falsche PIN. Verbleibende Versuche bis zur Sperre: {left}.",
    "sms.cmd.pin_locked": "Zu viele falsche PINs. Diese Nummer ist bis {until} Uhr gesperrt.",
    "sms.pin_guessed": "PLP Alert: {count} falsche PINs wurden für Sie eingegeben (zuletzt von "
    "{number}). Ihre PIN ist bis {until} Uhr gesperrt. Waren Sie es nicht, sagen "
    "Sie es Ihrem Koordinator.",
    "sms.cmd.no_target": "Ziel fehlt. Format: ALARM <PIN> <KPP oder Zone> <Nachricht>.",
    "sms.cmd.unknown_target": "Ziel {code} unbekannt: keine KPP und keine Zone hat diesen Code. "
    "Nichts wurde gesendet.",
    "sms.cmd.outside_zone": "{code} liegt nicht in Ihrer Zone {zone}. Nichts wurde gesendet.",
    "sms.cmd.empty_message": "Alarm ohne Text. Nichts wurde gesendet.",
    "sms.cmd.text_too_long": "Nachricht zu lang: höchstens {max} Zeichen. Nichts wurde gesendet.",
    "sms.cmd.alert_refused": "Alarm abgelehnt. Nichts wurde gesendet. Im Notfall rufen Sie 101 an.",
    "sms.cmd.raised": "Alarm Ref {ref} für {plps} erstellt ({members} Mitglieder). Der "
    "Koordinator ist informiert und muss ihn verbreiten. Sie erhalten eine SMS, "
    "sobald er versandt wird. Stand: STATUS {ref}.",
    "sms.cmd.raised_released": "Alarm Ref {ref} an die {members} Mitglieder von {plps} "
    "verbreitet. Stand: STATUS {ref}.",
    "sms.cmd.released": "Alarm Ref {ref} an {members} Mitglieder verbreitet. Stand: STATUS {ref}.",
    "sms.cmd.rejected": "Alarm Ref {ref} abgelehnt. Er wird nicht verbreitet.",
    "sms.cmd.already_released": "Alarm Ref {ref} wurde bereits von {name} verbreitet.",
    "sms.cmd.already_rejected": "Alarm Ref {ref} wurde bereits von {name} abgelehnt.",
    "sms.cmd.automatic": "dem System",
    "sms.cmd.alert_over": "Alarm Ref {ref} ist beendet: es ist nichts mehr zu tun.",
    "sms.cmd.unknown_ref": "Kein Alarm hat die Referenz {ref}. Antworten Sie 1, um den letzten "
    "Alarm zu bestätigen.",
    "sms.cmd.ref_missing": "Referenz fehlt. Beispiel: {word} K7RM.",
    "sms.cmd.not_decider": "Nur ein Koordinator der KPP kann Alarm Ref {ref} verbreiten oder "
    "ablehnen.",
    "sms.cmd.confirmed": "Danke. Ihre Bestätigung von Alarm Ref {ref} ist gespeichert.",
    "sms.cmd.already_confirmed": "Ihre Bestätigung von Alarm Ref {ref} war bereits gespeichert. "
    "Danke.",
    "sms.cmd.nothing_running": "Es gibt keinen laufenden Alarm zu bestätigen.",
    "sms.cmd.not_addressed": "Alarm Ref {ref} wurde nicht an Sie gesendet.",
    "sms.cmd.not_sent_yet": "Alarm Ref {ref} ist noch nicht verbreitet.",
    "sms.cmd.awaiting_release": "Alarm Ref {ref} wartet auf Ihre Entscheidung: JA {ref} zum "
    "Verbreiten, NEIN {ref} zum Ablehnen.",
    "sms.cmd.status": "Ref {ref}, {state}: {confirmed} bestätigt, {reached} erreicht, {pending} "
    "laufend, {unreachable} unerreichbar, von {members} Mitgliedern.",
    "sms.cmd.state.awaiting_release": "wartet auf Verbreitung",
    "sms.cmd.state.released": "verbreitet",
    "sms.cmd.state.delivering": "wird verbreitet",
    "sms.cmd.state.rejected": "abgelehnt",
    "sms.cmd.state.closed": "beendet",
    "sms.cmd.opted_out": "Sie erhalten keine SMS der KPP mehr. Anrufe gehen weiter. START, um sie "
    "wieder zu erhalten.",
    "sms.cmd.opted_in": "Sie erhalten wieder SMS der KPP. STOP, um keine mehr zu erhalten.",
    "sms.cmd.flood": "Zu viele Nachrichten: Ihre SMS werden 1 Minute lang ignoriert.",
    "sms.cmd.apology": "Technisches Problem: Ihre Nachricht wurde nicht verarbeitet. Versuchen "
    "Sie es in 1 Minute erneut. Im Notfall rufen Sie 101 an.",
}
