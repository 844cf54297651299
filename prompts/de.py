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
}
