"""English: every word the system says or texts in English."""

TEXTS = {
    "name.plp": "PLP {plp}",
    "sms.alert": "{exercise}PLP {plp}, police message: {message} "
                 "Reply 1 to confirm. Ref {ref}",
    "sms.exercise_prefix": "EXERCISE - ",
    "email.subject": "{exercise}Police message for {plp} – ref. {ref}",
    "email.exercise_prefix": "[EXERCISE] ",
    "email.exercise_notice": "EXERCISE – This message is part of an exercise. "
                             "It is not a real alert.",
    "email.intro": "The police have sent the following message to the members of {plp}:",
    "email.source": "Source: police ({zone})",
    "email.reference": "Reference: {ref}",
    "email.confirm_intro": "Please confirm that you have received this message. "
                           "One click is enough:",
    "email.confirm_button": "I confirm receipt",
    "email.link_fallback": "If the button does not work, copy this address into your browser:",
    "email.footer": "You are receiving this e-mail as a member of a local prevention "
                    "partnership ({plp}). Please do not reply to it. In an emergency, "
                    "call 101 (police) or 112.",
    # Level 1: the police's alert put at the coordinators' disposal.
    "sms.release_request": "{exercise}PLP {plp}: police alert ref {ref} for {members} "
                           "members: {message} Reply YES {ref} to send it, NO {ref} to "
                           "reject it.",
    "sms.escalation": "{exercise}PLP {plp}: police alert ref {ref} has waited {minutes} min "
                      "without a coordinator's answer: {message} Reply YES {ref} to send it, "
                      "NO {ref} to reject it.",
    "sms.released_by": "Alert ref {ref} sent by {name} to {members} members.",
    "sms.rejected_by": "Alert ref {ref} rejected by {name}. It will not be sent.",
    "sms.expired": "Alert ref {ref} expired without being sent.",
    "sms.all_clear": "{exercise}PLP {plp}, all clear for alert ref {ref}: {message}",
    # Level 2: what a member hears when the alert call is answered.
    "voice.exercise_prefix": "This is an exercise. ",
    "voice.alert_intro": "{exercise}Urgent police message for the PLP {plp}.",
    "voice.alert_prompt": "To confirm, press 1. To hear it again, press 0.",
    "voice.ack_confirmed": "Thank you. Your confirmation is recorded. Goodbye.",
    "voice.no_input": "We did not receive an answer. Goodbye.",
    "voice.goodbye": "Goodbye.",
    "voice.alert_over": "This message is no longer current. Thank you, goodbye.",
    "voice.machine_message": "{exercise}Police message for the PLP {plp}. {message} "
                             "To confirm, reply 1 by text message or call this number back. "
                             "Reference {ref}.",
    "voice.apology": "Sorry, a technical problem prevents us from going on. Goodbye.",
    # Lifecycle: the release decided by the charter's timer; the e-mail link's page.
    "sms.released_auto": "Alert ref {ref} sent automatically to {members} members: "
                         "no coordinator answered in time.",
    "web.title": "Confirmation of a police message",
    "web.confirmed": "Thank you. Your confirmation is recorded.",
    "web.already_confirmed": "Your confirmation was already recorded. Thank you.",
    "web.link_invalid": "This confirmation link is not valid. Check that the whole address "
                        "was copied.",
    "web.link_expired": "This confirmation link has expired.",
    "web.alert_over": "This message is no longer current: no confirmation is needed any more.",
}
