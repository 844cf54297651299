"""Nederlands: every word the system says or texts in Dutch."""

TEXTS = {
    "name.plp": "BIN {plp}",
    "sms.alert": "{exercise}BIN {plp}, bericht van de politie: {message} "
                 "Antwoord 1 om te bevestigen. Ref {ref}",
    "sms.exercise_prefix": "OEFENING - ",
    "email.subject": "{exercise}Bericht van de politie voor {plp} – ref. {ref}",
    "email.exercise_prefix": "[OEFENING] ",
    "email.exercise_notice": "OEFENING – Dit bericht maakt deel uit van een oefening. "
                             "Het is geen echte waarschuwing.",
    "email.intro": "De politie heeft het volgende bericht gestuurd naar de leden van {plp}:",
    "email.source": "Bron: politie ({zone})",
    "email.reference": "Referentie: {ref}",
    "email.confirm_intro": "Bevestig alstublieft dat u dit bericht hebt ontvangen. "
                           "Eén klik volstaat:",
    "email.confirm_button": "Ik bevestig de ontvangst",
    "email.link_fallback": "Werkt de knop niet? Kopieer dan dit adres in uw browser:",
    "email.footer": "U ontvangt deze e-mail als lid van een buurtinformatienetwerk ({plp}). "
                    "Gelieve niet op deze e-mail te antwoorden. Bel in noodgevallen "
                    "101 (politie) of 112.",
    # Level 1: the police's alert put at the coordinators' disposal.
    "sms.release_request": "{exercise}BIN {plp}: alarm van de politie ref {ref} voor {members} "
                           "leden: {message} Antwoord JA {ref} om te verspreiden, "
                           "NEE {ref} om te weigeren.",
    "sms.escalation": "{exercise}BIN {plp}: het alarm van de politie ref {ref} wacht al "
                      "{minutes} min zonder antwoord van een coördinator: {message} Antwoord "
                      "JA {ref} om te verspreiden, NEE {ref} om te weigeren.",
    "sms.released_by": "Alarm ref {ref} verspreid door {name} naar {members} leden.",
    "sms.rejected_by": "Alarm ref {ref} geweigerd door {name}. Het wordt niet verspreid.",
    "sms.expired": "Alarm ref {ref} verlopen zonder verspreiding.",
    "sms.all_clear": "{exercise}BIN {plp}, einde alarm ref {ref}: {message}",
    # Level 2: what a member hears when the alert call is answered.
    "voice.exercise_prefix": "Dit is een oefening. ",
    "voice.alert_intro": "{exercise}Dringend bericht van de politie voor het BIN {plp}.",
    "voice.alert_prompt": "Druk op 1 om te bevestigen. Druk op 0 om opnieuw te beluisteren.",
    "voice.ack_confirmed": "Dank u. Uw bevestiging is geregistreerd. Tot ziens.",
    "voice.no_input": "We hebben geen antwoord ontvangen. Tot ziens.",
    "voice.goodbye": "Tot ziens.",
    "voice.alert_over": "Dit bericht is niet meer actueel. Dank u en tot ziens.",
    "voice.machine_message": "{exercise}Bericht van de politie voor het BIN {plp}. {message} "
                             "Antwoord 1 per sms of bel dit nummer terug om te bevestigen. "
                             "Referentie {ref}.",
    "voice.apology": "Sorry, door een technisch probleem kunnen we niet verder. "
                     "Onze excuses. Tot ziens.",
    # Levenscyclus: verspreiding na de termijn van het charter; pagina van de e-maillink.
    "sms.released_auto": "Alarm ref {ref} automatisch verspreid naar {members} leden: "
                         "geen coördinator antwoordde op tijd.",
    "web.title": "Bevestiging van een bericht van de politie",
    "web.confirmed": "Dank u. Uw bevestiging is geregistreerd.",
    "web.already_confirmed": "Uw bevestiging was al geregistreerd. Dank u.",
    "web.link_invalid": "Deze bevestigingslink is niet geldig. Controleer of het volledige "
                        "adres gekopieerd is.",
    "web.link_expired": "Deze bevestigingslink is verlopen.",
    "web.alert_over": "Dit bericht is niet meer actueel: een bevestiging is niet meer nodig.",
}
