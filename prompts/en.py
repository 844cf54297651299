"""English: every word the system says or texts in English."""

TEXTS = {
    "name.plp": "PLP {plp}",
    "sms.alert": "{exercise}PLP {plp}, police message: {message} Reply 1 to confirm. Ref {ref}",
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
    # IVR call trees (issue 6): release call, inbound calls, recorded messages.
    "voice.coordinator_intro": "{exercise}Urgent message from your coordinator for the PLP {plp}.",
    "voice.machine_intro": "{exercise}Urgent message for the PLP {plp}.",
    "voice.machine_how_to_confirm": "To confirm, reply 1 by text message, or call this number "
    "back. Reference {ref}.",
    "voice.release_intro": "{exercise}Hello. This is PLP Alert. The police ask to send a "
    "message to the members of the PLP {plp}. Reference {ref}. "
    "Here is the message.",
    "voice.release_reach": "This message would go to {members} members.",
    "voice.release_prompt": "To send it, press 1. To reject it, press 2. "
    "To hear it again, press 0.",
    "voice.release_machine": "{exercise}Hello. This is PLP Alert. A police message for the PLP "
    "{plp} awaits your decision. Reference {ref}. To send it, reply "
    "YES and the reference by text message, or call this number back.",
    "voice.released": "Thank you. The message is sent to {members} members.",
    "voice.rejected": "Thank you. The message is rejected. It will not be sent.",
    "voice.was_released": "This message was already sent.",
    "voice.was_rejected": "This message was already rejected.",
    "voice.not_allowed": "You cannot decide about this message.",
    "voice.stranger": "Hello. You have called an alert service. This number does not take "
    "calls. Thank you, goodbye.",
    "voice.pin_prompt": "Hello. Enter your secret code, then the hash key.",
    "voice.pin_wrong": "This code is not correct. You have {left} tries left.",
    "voice.pin_locked": "Too many tries. This number is locked for {minutes} minutes. Goodbye.",
    "voice.coordinator_menu": "To record a new message, press 1. "
    "For messages awaiting a decision, press 2. "
    "For the progress of the latest message, press 3.",
    "voice.invalid_choice": "This choice is not valid.",
    "voice.record_prompt": "After the beep, say your message. You have 2 minutes. "
    "Then press the hash key.",
    "voice.record_empty": "Nothing was recorded.",
    "voice.record_playback": "Here is your message.",
    "voice.record_review": "To send it, press 1. To record it again, press 2. To cancel, press 3.",
    "voice.record_again_prompt": "To record again, press 2. To cancel, press 3.",
    "voice.urgency_prompt": "For an urgent message, press 1. For a message that is not "
    "urgent, press 2.",
    "voice.record_wait": "One moment, please.",
    "voice.record_failed": "Sorry. Your recording could not be saved.",
    "voice.record_not_ready": "Your recording is not ready yet. Try again in a few minutes.",
    "voice.record_sent": "Your message is sent to {members} members. Reference {ref}.",
    "voice.record_cancelled": "Your message is cancelled. It will not be sent.",
    "voice.pending_none": "No message awaits a decision.",
    "voice.next_alert": "Next message.",
    "voice.counts": "Message {ref}. {confirmed} confirmations. {reached} members reached, "
    "without confirmation. {pending} pending. {unreachable} unreachable.",
    "voice.counts_none": "There is no message yet.",
    "voice.member_none": "There is no current message for your PLP.",
    "voice.ack_thanks": "Thank you. Your confirmation is recorded.",
    "sms.recorded_message": "Voice message from your coordinator. To hear it, call the PLP's "
    "number.",
    # Recordings (issue 6): the link to a recorded message in the alert e-mail.
    "email.recording_intro": "Listen to the voice message from your coordinator:",
    # SMS commands (issue 7): answers to texts sent to the PLP number.
    "sms.cmd.not_allowed": "Command refused. This number may not use it.",
    "sms.cmd.usage_member": "PLP: after an alert, reply 1 to confirm (or 1 and the reference). "
    "STOP: no more texts. HELP: this help.",
    "sms.cmd.usage_coordinator": "PLP: YES <ref> sends an alert, NO <ref> rejects it. ALERT <PIN> "
    "<message> alerts your PLP. STATUS <ref> gives the progress. 1 "
    "confirms.",
    "sms.cmd.usage_officer": "PLP: ALERT <PIN> <PLP or zone>,<other code> <message> creates an "
    "alert. STATUS <ref> gives the progress.",
    "sms.cmd.pin_missing": "PIN missing.",
    "sms.cmd.pin_wrong": "Wrong PIN. Attempts left before the lock: {left}.",
    "sms.cmd.pin_locked": "Too many wrong PINs. This number is locked until {until}.",
    "sms.pin_guessed": "PLP Alert: {count} wrong PINs were given for you (the last from {number}). "
    "Your PIN is locked until {until}. If this was not you, tell your coordinator.",
    "sms.cmd.no_target": "Target missing. Format: ALERT <PIN> <PLP or zone> <message>.",
    "sms.cmd.unknown_target": "Unknown target {code}: no PLP or zone has this code. Nothing was "
    "sent.",
    "sms.cmd.outside_zone": "{code} is not in your zone {zone}. Nothing was sent.",
    "sms.cmd.empty_message": "Alert without text. Nothing was sent.",
    "sms.cmd.text_too_long": "Message too long: {max} characters at most. Nothing was sent.",
    "sms.cmd.alert_refused": "Alert refused. Nothing was sent. In an emergency, call 101.",
    "sms.cmd.raised": "Alert ref {ref} created for {plps} ({members} members). The coordinator "
    "has been told and must send it. You will get a text as soon as it goes "
    "out. Progress: STATUS {ref}.",
    "sms.cmd.raised_released": "Alert ref {ref} sent to the {members} members of {plps}. "
    "Progress: STATUS {ref}.",
    "sms.cmd.released": "Alert ref {ref} sent to {members} members. Progress: STATUS {ref}.",
    "sms.cmd.rejected": "Alert ref {ref} rejected. It will not be sent.",
    "sms.cmd.already_released": "Alert ref {ref} was already sent by {name}.",
    "sms.cmd.already_rejected": "Alert ref {ref} was already rejected by {name}.",
    "sms.cmd.automatic": "the system",
    "sms.cmd.alert_over": "Alert ref {ref} is over: nothing more to do.",
    "sms.cmd.unknown_ref": "No alert has the reference {ref}. To confirm the latest alert, reply "
    "1.",
    "sms.cmd.ref_missing": "Reference missing. Example: {word} K7RM.",
    "sms.cmd.not_decider": "Only a coordinator of the PLP can send or reject alert ref {ref}.",
    "sms.cmd.confirmed": "Thank you. Your confirmation of alert ref {ref} is recorded.",
    "sms.cmd.already_confirmed": "Your confirmation of alert ref {ref} was already recorded. "
    "Thank you.",
    "sms.cmd.nothing_running": "There is no current alert to confirm.",
    "sms.cmd.not_addressed": "Alert ref {ref} was not sent to you.",
    "sms.cmd.not_sent_yet": "Alert ref {ref} has not been sent yet.",
    "sms.cmd.awaiting_release": "Alert ref {ref} awaits your decision: YES {ref} to send it, NO "
    "{ref} to reject it.",
    "sms.cmd.status": "Ref {ref}, {state}: {confirmed} confirmed, {reached} reached, {pending} in "
    "progress, {unreachable} unreachable, of {members} members.",
    "sms.cmd.state.awaiting_release": "awaiting release",
    "sms.cmd.state.released": "released",
    "sms.cmd.state.delivering": "being sent",
    "sms.cmd.state.rejected": "rejected",
    "sms.cmd.state.closed": "over",
    "sms.cmd.opted_out": "You will no longer get texts from the PLP. Calls continue. START to get "
    "them again.",
    "sms.cmd.opted_in": "You get texts from the PLP again. STOP to stop them.",
    "sms.cmd.flood": "Too many messages: your texts are ignored for 1 minute.",
    "sms.cmd.apology": "Technical problem: your message was not handled. Try again in 1 minute. "
    "In an emergency, call 101.",
}
