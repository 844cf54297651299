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
}
