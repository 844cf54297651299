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
    # IVR call trees (issue 6): release call, inbound calls, recorded messages.
    "voice.coordinator_intro": "{exercise}Dringend bericht van uw coördinator voor het BIN {plp}.",
    "voice.machine_intro": "{exercise}Dringend bericht voor het BIN {plp}.",
    "voice.machine_how_to_confirm": "Om te bevestigen, antwoord 1 per sms, of bel dit nummer "
    "terug. Referentie {ref}.",
    "voice.release_intro": "{exercise}Goedendag. Hier BIN Alarm. De politie vraagt om een "
    "bericht te sturen naar de leden van het BIN {plp}. Referentie {ref}. "
    "Dit is het bericht.",
    "voice.release_reach": "Dit bericht zou naar {members} leden gaan.",
    "voice.release_prompt": "Druk op 1 om het te versturen. Druk op 2 om het te weigeren. "
    "Druk op 0 om het opnieuw te beluisteren.",
    "voice.release_machine": "{exercise}Goedendag. Hier BIN Alarm. Een bericht van de politie "
    "voor het BIN {plp} wacht op uw beslissing. Referentie {ref}. "
    "Om het te versturen, antwoord JA en de referentie per sms, "
    "of bel dit nummer terug.",
    "voice.released": "Dank u. Het bericht is verstuurd naar {members} leden.",
    "voice.rejected": "Dank u. Het bericht is geweigerd. Het wordt niet verstuurd.",
    "voice.was_released": "Dit bericht is al verstuurd.",
    "voice.was_rejected": "Dit bericht is al geweigerd.",
    "voice.not_allowed": "U kunt niet over dit bericht beslissen.",
    "voice.stranger": "Goedendag. U belt een alarmdienst. Dit nummer neemt geen oproepen aan. "
    "Dank u en tot ziens.",
    "voice.pin_prompt": "Goedendag. Toets uw geheime code, en daarna het hekje.",
    "voice.pin_wrong": "Deze code is niet juist. U heeft nog {left} pogingen.",
    "voice.pin_locked": "Te veel pogingen. Dit nummer is {minutes} minuten geblokkeerd. Tot ziens.",
    "voice.coordinator_menu": "Druk op 1 om een nieuw bericht in te spreken. "
    "Druk op 2 voor de berichten die wachten. "
    "Druk op 3 voor de stand van het laatste bericht.",
    "voice.invalid_choice": "Deze keuze is niet geldig.",
    "voice.record_prompt": "Spreek na de pieptoon uw bericht in. U heeft 2 minuten. "
    "Druk daarna op het hekje.",
    "voice.record_empty": "We hebben niets opgenomen.",
    "voice.record_playback": "Dit is uw bericht.",
    "voice.record_review": "Druk op 1 om het te versturen. Druk op 2 om het opnieuw in te "
    "spreken. Druk op 3 om te annuleren.",
    "voice.record_again_prompt": "Druk op 2 om opnieuw in te spreken. Druk op 3 om te annuleren.",
    "voice.urgency_prompt": "Druk op 1 voor een dringend bericht. "
    "Druk op 2 voor een niet-dringend bericht.",
    "voice.record_wait": "Een ogenblik, alstublieft.",
    "voice.record_failed": "Sorry. Uw opname kon niet bewaard worden.",
    "voice.record_not_ready": "Uw opname is nog niet klaar. Probeer het over enkele minuten "
    "opnieuw.",
    "voice.record_sent": "Uw bericht is verstuurd naar {members} leden. Referentie {ref}.",
    "voice.record_cancelled": "Uw bericht is geannuleerd. Het wordt niet verstuurd.",
    "voice.pending_none": "Er wacht geen bericht op een beslissing.",
    "voice.next_alert": "Volgend bericht.",
    "voice.counts": "Bericht {ref}. {confirmed} bevestigingen. {reached} leden bereikt, "
    "zonder bevestiging. {pending} in afwachting. {unreachable} onbereikbaar.",
    "voice.counts_none": "Er is nog geen bericht.",
    "voice.member_none": "Er is geen lopend bericht voor uw BIN.",
    "voice.ack_thanks": "Dank u. Uw bevestiging is geregistreerd.",
    "sms.recorded_message": "Gesproken bericht van uw coördinator. Bel het nummer van het BIN "
    "om het te beluisteren.",
    # Recordings (issue 6): the link to a recorded message in the alert e-mail.
    "email.recording_intro": "Beluister het gesproken bericht van uw coördinator:",
    # SMS-opdrachten (issue 7): antwoorden op sms'en naar het nummer van het BIN.
    "sms.cmd.not_allowed": "Opdracht geweigerd. Dit nummer mag ze niet gebruiken.",
    "sms.cmd.usage_member": "BIN: antwoord na een alarm 1 om te bevestigen (of 1 en de "
    "referentie). STOP: geen sms meer. HULP: deze hulp.",
    "sms.cmd.usage_coordinator": "BIN: JA <ref> verspreidt een alarm, NEE <ref> weigert het. "
    "ALARM <pincode> <bericht> alarmeert uw BIN. STATUS <ref> geeft "
    "de stand. 1 bevestigt.",
    "sms.cmd.usage_officer": "BIN: ALARM <pincode> <BIN of zone>,<andere code> <bericht> maakt "
    "een alarm. STATUS <ref> geeft de stand.",
    "sms.cmd.pin_missing": "Pincode ontbreekt.",
    "sms.cmd.pin_wrong": "Foute pincode. Resterende pogingen voor blokkering: {left}.",
    "sms.cmd.pin_locked": "Te veel foute pincodes. Dit nummer is geblokkeerd tot {until}.",
    "sms.pin_guessed": "PLP Alert: er werden {count} foute pincodes voor u gegeven (laatste vanaf "
    "{number}). Uw pincode is geblokkeerd tot {until}. Was u het niet, verwittig "
    "dan uw coördinator.",
    "sms.cmd.no_target": "Doel ontbreekt. Vorm: ALARM <pincode> <BIN of zone> <bericht>.",
    "sms.cmd.unknown_target": "Doel {code} onbekend: geen BIN of zone heeft deze code. Er is "
    "niets verstuurd.",
    "sms.cmd.outside_zone": "{code} ligt niet in uw zone {zone}. Er is niets verstuurd.",
    "sms.cmd.empty_message": "Alarm zonder tekst. Er is niets verstuurd.",
    "sms.cmd.text_too_long": "Bericht te lang: hoogstens {max} tekens. Er is niets verstuurd.",
    "sms.cmd.alert_refused": "Alarm geweigerd. Er is niets verstuurd. Bel in noodgevallen 101.",
    "sms.cmd.raised": "Alarm ref {ref} aangemaakt voor {plps} ({members} leden). De coördinator "
    "is verwittigd en moet het verspreiden. U krijgt een sms zodra het "
    "vertrekt. Stand: STATUS {ref}.",
    "sms.cmd.raised_released": "Alarm ref {ref} verspreid naar de {members} leden van {plps}. "
    "Stand: STATUS {ref}.",
    "sms.cmd.released": "Alarm ref {ref} verspreid naar {members} leden. Stand: STATUS {ref}.",
    "sms.cmd.rejected": "Alarm ref {ref} geweigerd. Het wordt niet verspreid.",
    "sms.cmd.already_released": "Alarm ref {ref} is al verspreid door {name}.",
    "sms.cmd.already_rejected": "Alarm ref {ref} is al geweigerd door {name}.",
    "sms.cmd.automatic": "het systeem",
    "sms.cmd.alert_over": "Alarm ref {ref} is afgelopen: er hoeft niets meer te gebeuren.",
    "sms.cmd.unknown_ref": "Geen alarm heeft referentie {ref}. Antwoord 1 om het laatste alarm te "
    "bevestigen.",
    "sms.cmd.ref_missing": "Referentie ontbreekt. Voorbeeld: {word} K7RM.",
    "sms.cmd.not_decider": "Alleen een coördinator van het BIN kan alarm ref {ref} verspreiden of "
    "weigeren.",
    "sms.cmd.confirmed": "Dank u. Uw bevestiging van alarm ref {ref} is geregistreerd.",
    "sms.cmd.already_confirmed": "Uw bevestiging van alarm ref {ref} was al geregistreerd. Dank u.",
    "sms.cmd.nothing_running": "Er is geen lopend alarm om te bevestigen.",
    "sms.cmd.not_addressed": "Alarm ref {ref} is niet naar u gestuurd.",
    "sms.cmd.not_sent_yet": "Alarm ref {ref} is nog niet verspreid.",
    "sms.cmd.awaiting_release": "Alarm ref {ref} wacht op uw beslissing: JA {ref} om het te "
    "verspreiden, NEE {ref} om het te weigeren.",
    "sms.cmd.status": "Ref {ref}, {state}: {confirmed} bevestigd, {reached} bereikt, {pending} "
    "bezig, {unreachable} onbereikbaar, van {members} leden.",
    "sms.cmd.state.awaiting_release": "wacht op verspreiding",
    "sms.cmd.state.released": "verspreid",
    "sms.cmd.state.delivering": "wordt verspreid",
    "sms.cmd.state.rejected": "geweigerd",
    "sms.cmd.state.closed": "afgelopen",
    "sms.cmd.opted_out": "U krijgt geen sms meer van het BIN. De oproepen gaan door. START om ze "
    "opnieuw te krijgen.",
    "sms.cmd.opted_in": "U krijgt opnieuw sms van het BIN. STOP om ze niet meer te krijgen.",
    "sms.cmd.flood": "Te veel berichten: uw sms'en worden 1 minuut genegeerd.",
    "sms.cmd.apology": "Technisch probleem: uw bericht is niet verwerkt. Probeer opnieuw binnen 1 "
    "minuut. Bel in noodgevallen 101.",
}
