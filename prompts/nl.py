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
}
