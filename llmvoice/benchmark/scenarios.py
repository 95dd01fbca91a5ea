"""Scripted conversations for the benchmark: seeded, deterministic and prefix-consistent.

Every scenario is generated from a name and a seed with its own ``random.Random``; nothing is
read from disk or the network, and no tokenizer runs during generation (sizes are set by word
and character counts). The first *k* turns of a longer run equal a run of *k* turns, so
``--turns`` only cuts the same conversation.

Scenarios:

``voice_support`` (300 turns)
    A phone support call to Northwind Outfitters, a fictional outdoor-gear retailer. Short user
    utterances (5-25 words) and short spoken replies (10-45 words), composed from many templates
    and vocabularies. A tool call (``lookup_order``, ``check_stock``, ``track_shipment``,
    ``schedule_callback``, ``update_address``, ...) every 4-6 turns, each result a JSON string of
    about 50-300 tokens. The dynamic context (a knowledge-base snippet of about 100-200 tokens and
    a caller-status line) rotates every 3-5 turns; a few windows have none. The system prompt is
    about 1,300 tokens (``o200k_base``), above OpenAI's 1,024-token cache minimum. Turns are
    5-19 s apart: the user speaks for 2-6 s, the reply plays for 3-10 s.
``tool_heavy`` (60 turns)
    The same caller, served by an assistant that researches: most turns run 2-4 tool rounds
    (one request each) whose outputs are bulky, about 400-1,500 tokens each (catalog search
    results, inventory tables, service logs, order histories, knowledge articles).
``long_system`` (100 turns)
    The support call with a system prompt of about 4,000 tokens: the base prompt followed by a
    long policy handbook.
``ttl_pauses`` (120 turns)
    The support call with holds of 6-9 minutes (every 20 turns from turn 12) and call-backs after
    more than an hour (turns 45, 105, ...), so provider cache TTLs expire between turns.
``long_call`` (300 turns)
    All of it at once: the ~4,000-token system prompt of ``long_system``, the tool calls of the
    support call, and the holds and call-backs of ``ttl_pauses``, over 300 turns.

Every scenario plants seven facts in its first ten turns (turns 0, 1, 2, 4, 5, 7 and 8): the
caller's name, an order number, a rewards number, the delivery city, a size and colour, a phone
number and a preferred contact time. Each value changes with the seed and appears exactly once in
the whole scenario, in the planting turn's user utterance (case-insensitively, nowhere in the
system prompt, tools, context, tool results or replies), so finding it in the final request
shows the contender kept that turn. A run shorter than a planting turn omits that fact.

A scenario is stored as JSON (:func:`scenario_to_json`, :func:`scenario_from_json`), and
:func:`load_scenario` takes either a scenario name or a path to such a file::

    scenario = load_scenario("voice_support", turns=50, seed=3)
    text = scenario_to_json(scenario)
    assert scenario_from_json(text) == scenario
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llmvoice.benchmark.base import Fact, Scenario, Step, Turn
from llmvoice.errors import ConfigurationError
from llmvoice.tokens import load_encoding

__all__ = [
    "DEFAULT_TURNS",
    "SCENARIOS",
    "SCHEMA_VERSION",
    "generate",
    "load_scenario",
    "scenario_from_json",
    "scenario_stats",
    "scenario_to_json",
]

#: Version of the JSON layout written by :func:`scenario_to_json`.
SCHEMA_VERSION = 1

#: Scenario name → one-line description.
SCENARIOS: dict[str, str] = {
    "voice_support": (
        "Phone support call for an outdoor-gear retailer: short turns, a tool call every 4-6 turns, "
        "rotating knowledge-base context, a ~1,300-token system prompt."
    ),
    "tool_heavy": (
        "Research-style assistant: most turns run 2-4 tool rounds with bulky outputs "
        "(search results, tables, logs) of ~400-1,500 tokens each."
    ),
    "long_system": "The support call with a ~4,000-token system prompt (a long policy handbook).",
    "ttl_pauses": (
        "The support call with holds of 6-9 minutes and call-backs after more than an hour, "
        "so provider cache TTLs expire."
    ),
    "long_call": (
        "A 300-turn support call with the ~4,000-token system prompt, tool calls, holds of 6-9 "
        "minutes and call-backs after more than an hour."
    ),
}

#: Default number of turns per scenario.
DEFAULT_TURNS: dict[str, int] = {
    "voice_support": 300,
    "tool_heavy": 60,
    "long_system": 100,
    "ttl_pauses": 120,
    "long_call": 300,
}

# ---------------------------------------------------------------------------------------------
# Planted facts. Their vocabularies are used for nothing else, so a value cannot recur.

_FACT_FIRST = (
    "Odalys", "Thaddeus", "Marisol", "Leopold", "Ingrid", "Cassius", "Winifred", "Evander", "Rosalind",
    "Ignatius", "Philippa", "Bartholomew", "Seraphina", "Lysander", "Henrietta", "Octavian", "Clementine",
    "Barnaby", "Ottilie", "Percival", "Anouk", "Casimir", "Imogen", "Florian",
)  # fmt: skip
_FACT_LAST = (
    "Brennecke", "Quenneville", "Abernathy", "Lindqvist", "Okonkwo", "Thistlewood", "Marchetti", "Fairweather",
    "Oyelaran", "Castellanos", "Wojciechowski", "Featherstone", "Delacroix", "Nakagawa", "Ravensworth",
    "Szczepanski", "Achebe", "Kowalczyk", "Montgomery", "Beauchamp", "Vandermeer", "Halvorsen", "Iwasaki",
)  # fmt: skip
_FACT_CITIES = (
    "Hood River, Oregon", "Sandpoint, Idaho", "Port Townsend, Washington", "Ketchum, Idaho",
    "Leavenworth, Washington", "Truckee, California", "Durango, Colorado", "Estes Park, Colorado",
    "Lake Placid, New York", "Marquette, Michigan", "Bar Harbor, Maine", "Whitefish, Montana", "Stowe, Vermont",
    "Bozeman, Montana", "Flagstaff, Arizona", "Bishop, California", "Moab, Utah", "Taos, New Mexico",
    "Ely, Minnesota", "Lander, Wyoming",
)  # fmt: skip
_FACT_COLOURS = (
    "Glacier Teal", "Ember Copper", "Lichen Gold", "Dusk Violet", "Fjord Blue", "Sierra Clay", "Moss Agate",
    "Tidal Plum", "Saffron Ridge", "Basalt Grey", "Aurora Pink", "Cedar Smoke",
)  # fmt: skip
_FACT_SIZES = (
    "size 7.5 wide", "size 8", "size 9.5", "size 10.5 wide", "size 11", "size 12", "medium tall", "large petite",
    "small regular", "extra large tall",
)  # fmt: skip
_FACT_AREA_CODES = ("541", "208", "360", "530", "970", "406", "802", "928", "207", "435", "505", "218", "307", "906")

#: Fact key → turn that plants it.
_PLANT_TURNS: dict[str, int] = {
    "name": 0,
    "order_number": 1,
    "loyalty_id": 2,
    "delivery_city": 4,
    "product_preference": 5,
    "phone": 7,
    "contact_time": 8,
}
_PLANT_BY_TURN = {turn: key for key, turn in _PLANT_TURNS.items()}

_PLANT_UTTERANCES: dict[str, tuple[str, ...]] = {
    "name": (
        "Hi, this is {v}, I'm calling about an order I placed a couple of weeks ago.",
        "Hello, my name is {v} and I have a question about my order.",
        "Yeah hi, it's {v} here, I got a text saying my package was delayed.",
    ),
    "order_number": (
        "The order number is {v}, it was a tent and some other camping stuff.",
        "Sure, it's {v}, I placed it on your website.",
        "I have the email right here, it says order {v}.",
    ),
    "loyalty_id": (
        "Yes, my rewards number is {v}, if that helps.",
        "I am a member, the number on my card is {v}.",
        "I think so, it says {v} on the back of the card.",
    ),
    "delivery_city": (
        "It is going to our cabin in {v}, not my home address.",
        "The delivery goes to {v}, we stay there all summer.",
        "Please ship it to {v}, that's where we'll be next month.",
    ),
    "product_preference": (
        "For the boots I'd want the {v} if you have it.",
        "I usually take the {v}, that fits me best.",
        "If you swap anything, make it the {v} please.",
    ),
    "phone": (
        "The best number to reach me is {v}.",
        "You can call me on {v}, that's my cell.",
        "Use {v}, the home phone is disconnected.",
    ),
    "contact_time": (
        "Please only call {v}, I'm at work otherwise.",
        "The best time to reach me is {v}.",
        "If anyone calls back, make it {v} please.",
    ),
}
_PLANT_REPLIES: dict[str, tuple[str, ...]] = {
    "name": (
        "Thanks for calling Northwind Outfitters, I'm happy to help. Could you read me the order number?",
        "Nice to meet you, and thanks for calling. What's the order number so I can pull it up?",
        "Thanks for reaching out, sorry to hear about the delay. Do you have the order number handy?",
    ),
    "order_number": (
        "Perfect, I have that order open now. Are you a Trailhead Rewards member as well?",
        "Great, thank you, that's the one. Do you happen to have a rewards card with us?",
        "Got it, I'm looking at it now. Is there a rewards number on your account?",
    ),
    "loyalty_id": (
        "Thanks, that's linked to the call now, so any points will post automatically.",
        "Perfect, I've attached that, you'll earn points on anything we change today.",
        "Great, your membership is on the call now. What's going on with the order?",
    ),
    "delivery_city": (
        "Understood, I've noted the delivery address for this shipment. Is there anything about sizing we should fix?",
        "Okay, thanks, I'll make sure everything on this order goes there.",
        "Thanks, I've updated the shipping note so the courier goes to the right place.",
    ),
    "product_preference": (
        "Noted, I'll use that for any exchange we set up today.",
        "Thanks, that's saved as your preference for anything on this order.",
        "Got it, I'll keep that in mind when I check what's in stock.",
    ),
    "phone": (
        "Thanks, I've saved that as the best number for this case.",
        "Perfect, that's on the case now in case we get cut off.",
        "Got it, we'll use that number if we need to reach you.",
    ),
    "contact_time": (
        "Understood, I've added that to the case so nobody calls at a bad time.",
        "No problem, that's noted on the case for any follow-up calls.",
        "Thanks, I'll make sure the team sees that before they call.",
    ),
}

# ---------------------------------------------------------------------------------------------
# Everyday vocabulary (never overlaps the fact vocabularies above).

_PRODUCTS = (
    "Ridgeline two-person tent", "Cascade dome tent", "Alpine 15 sleeping bag", "Driftwood down quilt",
    "Talus mid hiking boots", "Scree trail runners", "Stormfront rain jacket", "Larch fleece pullover",
    "Switchback 45 backpack", "Canyon daypack", "Emberlite camp stove", "Beacon headlamp",
    "Tarn trekking poles", "Clearwater water filter", "Merino base layer", "Hollow camp chair",
    "Summit insulated jacket", "Basin sleeping pad", "Cairn hip pack", "Riverstone sandals",
)  # fmt: skip
_COLOURS = ("charcoal", "olive", "navy", "rust", "sand", "black", "slate", "forest green", "sky blue", "burgundy")
_SIZES = ("7", "8", "8.5", "9", "10", "11", "S", "M", "L", "XL", "regular", "long")
_WAREHOUSES = ("Reno", "Columbus", "Allentown", "Memphis", "Salt Lake", "Dallas")
_CARRIERS = ("UPS", "FedEx", "USPS", "OnTrac", "LaserShip")
_HUBS = ("Sparks sort center", "Grove City hub", "Louisville Worldport", "Ontario gateway", "Indianapolis hub")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "the weekend")
_WINDOWS = ("morning", "early afternoon", "late afternoon", "evening")
_TIERS = ("Basecamp", "Summit", "Alpine")
_MOODS = ("calm", "friendly", "impatient", "frustrated", "relieved", "neutral")
_STREETS = ("Larch Street", "Birch Lane", "Quarry Road", "Elm Court", "Harbor Way", "Pine Ridge Drive", "Mill Road")
_STAFF = ("R. Ito", "D. Mensah", "K. Novak", "S. Patel", "J. Okafor", "M. Silva", "T. Berg", "A. Haddad")

_OPENERS = (
    "", "", "", "Okay, so", "Yeah,", "Um,", "Right,", "Also,", "One more thing,", "Quick question,", "Sorry,",
    "Alright,", "Oh, and", "Hmm,", "Actually,",
)  # fmt: skip
_CLOSERS = (
    "", "", "", "", "Thanks.", "If that makes sense.", "I'm in a bit of a hurry.", "It's for a trip on {day}.",
    "My kid needs it for camp.", "That would really help.", "I've been waiting a while.", "No rush though.",
)  # fmt: skip
_ACKS = (
    "Sure thing.", "Got it.", "Okay, let me see.", "Thanks for waiting.", "Absolutely.", "Good question.",
    "Alright.", "Of course.", "I hear you, that's frustrating.", "Happy to help with that.", "Thanks for asking.",
    "Okay.", "Let me explain.", "Right, so.", "Good news.",
)  # fmt: skip
_FOLLOWS = (
    "", "", "Is there anything else I can check for you?", "Would you like me to set that up?",
    "Does that work for you?", "Want me to text you the details?", "Should I go ahead with that?",
    "Anything else on the order?", "Does that answer it?", "Shall I add a note to the case?",
)  # fmt: skip

# Per intent: user templates, reply bodies without a tool, reply bodies after the tool ran, tool.
_INTENTS: dict[str, dict[str, Any]] = {
    "order_status": {
        "tool": "lookup_order",
        "user": (
            "Can you tell me where my order is at right now?",
            "I ordered the {product} a while ago and it still says processing.",
            "Has the {product} shipped yet, or is it still in the warehouse?",
            "Is there any update on the order? I was hoping to have it by {day}.",
            "What's the status of my other order, {ref}?",
        ),
        "reply": (
            "Orders usually leave the warehouse within two business days, so it should move very soon.",
            "Processing can take a little longer during sales, but nothing looks stuck on my side.",
            "I don't see any holds on the account, so it should ship on schedule.",
        ),
        "tool_reply": (
            "The order is {status} and left our {warehouse} warehouse on {day}, so expect it in {n} business days.",
            "It shows as {status}, packed in {warehouse}, with delivery estimated in about {n} days.",
            "Everything on it is {status}; the {product} was picked in {warehouse} and ships by {day}.",
        ),
    },
    "stock": {
        "tool": "check_stock",
        "user": (
            "Do you have the {product} in {colour}, size {size}?",
            "Is the {product} back in stock yet?",
            "Could you check if the {colour} {product} is available?",
            "I'd like to swap to the {product}, do you have it in {size}?",
            "Are there any {product}s left in {colour}?",
        ),
        "reply": (
            "Stock changes quickly this time of year, but that style usually restocks every couple of weeks.",
            "That one sells fast in the popular colours, so ordering sooner is safer.",
            "Most sizes come back within ten days when they sell out.",
        ),
        "tool_reply": (
            "We have {n} of the {product} in {colour}, size {size}, at the {warehouse} warehouse.",
            "There are {n} left in {colour} in {warehouse}, and more arrive on {day}.",
            "It's low, only {n} in {colour}, so I'd grab one now if you want it.",
        ),
    },
    "tracking": {
        "tool": "track_shipment",
        "user": (
            "The tracking link isn't working, can you check where the package is?",
            "It says out for delivery but nothing showed up, what's going on?",
            "Which carrier is bringing the {product}?",
            "Can you see when the box will actually arrive?",
        ),
        "reply": (
            "Tracking links sometimes take a day to update after the label is printed.",
            "Carriers can mark a box out for delivery early in the day, so it may still come tonight.",
            "If it doesn't show by tomorrow evening, we'll open a trace with the carrier.",
        ),
        "tool_reply": (
            "It's with {carrier}, last scanned at the {hub} on {day}, due in {n} days.",
            "{carrier} has it; the latest scan is the {hub}, and it's on time.",
            "The package is moving with {carrier}, currently at the {hub}, arriving {day}.",
        ),
    },
    "callback": {
        "tool": "schedule_callback",
        "user": (
            "Could someone call me back about this later?",
            "Can you set up a callback for {day}?",
            "I'd rather talk to a specialist, can they call me?",
        ),
        "reply": (
            "A specialist can call you back, usually within one business day.",
            "We can do a callback, I just need to pick a window that suits you.",
        ),
        "tool_reply": (
            "I've booked a callback for {day} in the {window}, and you'll get a text to confirm.",
            "Done, a specialist will call {day} {window}, reference {ref2}.",
        ),
    },
    "address": {
        "tool": "update_address",
        "user": (
            "I need to change the street address, we're moving next week.",
            "Can you update the unit number? It should be unit {n}.",
            "The street name is wrong on the label, it should be {street}.",
        ),
        "reply": (
            "I can change the address as long as the label hasn't been printed yet.",
            "Address changes after shipping go through the carrier, but I can request one.",
        ),
        "tool_reply": (
            "Done, the address now says {street}, and the label will update within the hour.",
            "Updated to {street}, unit {n}; the carrier gets the change tonight.",
        ),
    },
    "return": {
        "tool": "start_return",
        "user": (
            "I want to return the {product}, it doesn't fit right.",
            "The {product} arrived with a torn seam, can I send it back?",
            "How do I return something I bought online?",
        ),
        "reply": (
            "You have sixty days to return unused gear, and rewards members get free return shipping.",
            "Damaged items are replaced for free, you just need to send a photo or the item back.",
        ),
        "tool_reply": (
            "I've started the return, a prepaid {carrier} label is on its way by email.",
            "Return {ref2} is open; the refund posts about {n} days after we receive it.",
        ),
    },
    "member": {
        "tool": "lookup_member",
        "user": (
            "How many reward points do I have right now?",
            "Can I use my points on this order?",
            "When do my points expire?",
        ),
        "reply": (
            "Points are worth a dollar per hundred and can be used at checkout or over the phone.",
            "Points stay active as long as you make a purchase once every eighteen months.",
        ),
        "tool_reply": (
            "You have {points} points, worth {dollars} dollars, at the {tier} tier.",
            "Your balance is {points} points, so {dollars} dollars off if you'd like to use it.",
        ),
    },
    "knowledge": {
        "tool": "search_knowledge",
        "user": (
            "Is the {product} okay for cold weather, like below freezing?",
            "How do I wash the {product} without ruining it?",
            "Does the {product} come with a warranty?",
            "What does the {product} weigh, roughly?",
            "Can I use the {product} in heavy rain?",
        ),
        "reply": (
            "It's built for three seasons, so it's fine in cold nights but not deep winter.",
            "Cold water and a gentle cycle work best, then let it air dry completely.",
            "All our own-brand gear has a lifetime warranty against manufacturing defects.",
        ),
        "tool_reply": (
            "The {product} is rated to {temp} degrees and carries a {years} year warranty.",
            "Our guide says the {product} weighs about {grams} grams and handles steady rain well.",
            "Per the care guide, wash the {product} cold and tumble dry low for {n} minutes.",
        ),
    },
    "smalltalk": {
        "tool": None,
        "bare": True,
        "user": (
            "Okay, that sounds good to me.",
            "Great, thank you so much for that.",
            "Oh nice, that helps a lot actually.",
            "Alright, I think I follow you now.",
            "Perfect, that's exactly what I needed.",
            "Hmm, okay, let me think about that for a second.",
            "Oh good, I was getting worried about it.",
            "Okay, makes sense, I appreciate it.",
        ),
        "reply": (
            "You're welcome, I'm glad that helps.",
            "No problem at all, we'll get this sorted out today.",
            "Take your time, I'm right here.",
            "Great, I'll keep the case open while we go through the rest.",
        ),
    },
    "clarify": {
        "tool": None,
        "bare": True,
        "user": (
            "Sorry, could you say that again? The line cut out.",
            "Wait, what was that last part?",
            "Sorry, can you repeat the date?",
        ),
        "reply": (
            "Of course, let me repeat that more slowly.",
            "Sure, the short version is that everything is on track.",
            "No problem, I'll go over it once more.",
        ),
    },
}
_TOOL_INTENTS = tuple(name for name, intent in _INTENTS.items() if intent["tool"] is not None)
_INTENT_NAMES = tuple(_INTENTS)
_INTENT_WEIGHTS = (12, 10, 8, 4, 4, 6, 5, 10, 12, 5)

_HOLD_REQUESTS = (
    "Can you hold on a few minutes? I need to find the box in the garage.",
    "Hang on, I have to grab the receipt from the car, can you wait?",
    "Someone's at the door, could you hold for a bit?",
)
_HOLD_ACKS = (
    "Of course, take your time, I'll stay on the line.",
    "No problem, I'll place you on a short hold until you're back.",
)
_RESUMES = (
    "Okay, I'm back, sorry that took so long.",
    "Hi, still there? Sorry, I found it.",
    "Alright, I've got it now, thanks for waiting.",
)
_RESUME_REPLIES = (
    "No problem at all, welcome back. Where were we with the order?",
    "Welcome back, I still have everything open here, so we can carry on.",
)
_CALLBACK_REQUESTS = (
    "I have to jump into a meeting, can I call back in about an hour?",
    "I need to go pick up my kids, can we continue later?",
)
_CALLBACK_ACKS = (
    "Of course, I'll keep the case open so you can pick up where we left off.",
    "Sure, everything stays on the case, just call back when you're free.",
)
_CALLBACK_RESUMES = (
    "Hi, I'm calling back about the case from earlier, sorry it took so long.",
    "Hello again, I called earlier about the order and we got cut off.",
)
_CALLBACK_RESUME_REPLIES = (
    "Welcome back, I've reopened your case and I can see everything we discussed earlier.",
    "Thanks for calling back, the case is open again and all the notes are here.",
)

# Knowledge-base snippets: title and sentences with {n}-style slots.
_KB: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Returns and exchanges",
        (
            "Unused items can be returned within {days} days of delivery for a full refund.",
            "Rewards members receive a prepaid return label at no cost.",
            "Exchanges for a different size ship as soon as the original is scanned by the carrier.",
            "Items marked final sale cannot be returned but can still be repaired under warranty.",
            "Refunds go back to the original payment method within {n} business days of receipt.",
            "Gift returns are refunded as store credit unless the buyer requests otherwise.",
            "Worn footwear may be returned within {n} days if it shows a defect.",
        ),
    ),
    (
        "Shipping times and carriers",
        (
            "Standard shipping takes three to five business days from the day the order leaves the warehouse.",
            "Expedited orders placed before noon ship the same day.",
            "Rural addresses can add one or two days to the estimate.",
            "Oversized items such as tents and chairs may ship separately from the rest of the order.",
            "Tracking numbers appear in the order email about {n} hours after the label prints.",
            "Carrier delays over {days} days qualify the order for a shipping refund.",
            "Orders over {dollars} dollars ship free for rewards members.",
        ),
    ),
    (
        "Sleeping bag temperature ratings",
        (
            "Our ratings follow the ISO 23537 standard for the lower limit of a sleeper in a base layer.",
            "The comfort rating is usually about {n} degrees warmer than the limit rating.",
            "A pad with an R-value of at least four is needed for ground temperatures below freezing.",
            "Down fill keeps its loft best when stored loose in the large cotton sack, not compressed.",
            "Synthetic bags keep more warmth when damp and dry faster in humid climates.",
            "Customers who sleep cold should choose a bag rated {n} degrees below the expected low.",
        ),
    ),
    (
        "Footwear sizing",
        (
            "Our boots run about half a size small compared with most running shoes.",
            "Wide versions add about {n} millimetres across the forefoot.",
            "Customers between sizes should size up and use the included thicker insole.",
            "Break-in takes roughly {n} miles of easy walking for leather uppers.",
            "Trail runners use the same last as the hiking boots, so sizes match across both.",
            "Socks should be worn when trying boots on, as they change the fit noticeably.",
        ),
    ),
    (
        "Warranty and repairs",
        (
            "Own-brand gear carries a lifetime warranty against defects in materials and workmanship.",
            "Partner brands follow the manufacturer's warranty, typically {years} years.",
            "Normal wear, accidents and animal damage are repaired at cost.",
            "Repairs take about {days} days, and customers get a loaner for tents when one is available.",
            "Zipper sliders and buckles are replaced for free at any store.",
            "A photo of the damage speeds up the claim considerably.",
        ),
    ),
    (
        "Rewards program",
        (
            "Members earn one point per dollar spent and {n} bonus points on their birthday month.",
            "Points are worth one dollar per hundred and apply at checkout or over the phone.",
            "The Summit tier starts at {dollars} dollars of purchases per calendar year.",
            "Points expire after eighteen months without a purchase.",
            "Members get early access to the spring and autumn sales.",
            "Points cannot be transferred between accounts or redeemed for cash.",
        ),
    ),
    (
        "Rain jacket care",
        (
            "Wash waterproof shells with a technical wash every {n} uses or when water stops beading.",
            "Tumble drying on low for {n} minutes reactivates the water-repellent finish.",
            "Fabric softener clogs the membrane and should never be used.",
            "Seam tape lifting within the first two years is covered under warranty.",
            "Pit zips should be closed during washing to protect the sliders.",
            "Storing the jacket hung rather than stuffed prevents creases in the membrane.",
        ),
    ),
    (
        "Tent setup and care",
        (
            "Pitch a new tent once at home to check that all poles and stakes are present.",
            "Never pack a tent away wet for more than {n} hours or mildew can form.",
            "Pole repair sleeves are included in the stuff sack of every tent.",
            "The footprint protects the floor and is sold separately for most models.",
            "UV exposure weakens fly fabric, so avoid leaving a tent pitched for weeks in full sun.",
            "Seam sealer should be reapplied every {years} seasons on heavy-use tents.",
        ),
    ),
    (
        "Price matching and promotions",
        (
            "We match the price of authorised retailers on identical items in stock.",
            "Price adjustments are available within {days} days of purchase if our own price drops.",
            "Promotion codes cannot be combined, but rewards points can be used with any code.",
            "Clearance items are excluded from price matching.",
            "Bundle discounts apply automatically at checkout when all items are in the cart.",
            "Student and first-responder discounts of {pct} percent need a verified account.",
        ),
    ),
    (
        "Camp stove safety",
        (
            "Canister stoves should only be used outdoors or in a well-ventilated vestibule.",
            "Fuel canisters cannot ship by air and go by ground only.",
            "Cold weather reduces canister pressure, so keep the fuel warm in a jacket before use.",
            "Check the O-ring before each trip and replace it if it looks cracked.",
            "A windscreen improves efficiency by up to {pct} percent but must not enclose the canister.",
            "Empty canisters can be recycled once fully vented with the recycling tool.",
        ),
    ),
)

# ---------------------------------------------------------------------------------------------
# System prompts.

_BASE_PROMPT = """\
You are Sam, the voice assistant for Northwind Outfitters, an outdoor-gear retailer that sells tents, sleeping \
bags, footwear, clothing, packs, stoves and camp furniture online, by phone and in its stores. You are speaking \
with a customer on a live phone call. Everything you write is converted to speech and played to the caller, so \
the way you phrase things matters as much as what you say.

# Persona
- You are warm, calm and practical, like an experienced store employee who has used the gear on real trips.
- You never pretend to be a person if asked directly; say you are Northwind's automated assistant and that a \
human specialist is available if the caller prefers.
- You are patient with callers who are upset. Acknowledge the problem once, briefly, then move to what you can \
do about it. Do not apologise repeatedly.
- You use the caller's words for products when they are close enough, and only correct a product name when the \
difference matters for the order.

# Speaking style
- Keep each reply short: one to three sentences, usually under forty words. Long answers are hard to follow by ear.
- Say one thing at a time. When there are several options, name at most three and ask which one the caller wants.
- Never use lists, bullet points, headings, tables, emoji, markdown or URLs in a reply; they cannot be spoken.
- Say numbers the way people say them: "about three days", "twenty dollars", "order ending in four one two".
- Spell out reference codes slowly only when the caller asks for them, and group digits in twos or threes.
- Do not read tool output aloud. Summarise the one or two facts the caller needs.
- When you need a moment to look something up, do not narrate the lookup. The caller hears a short tone.
- If the caller interrupts you, stop, answer what they said, and do not repeat what you had already said.
- If you did not catch something, ask for it again in plain words; do not guess order numbers or addresses.
- End a reply with a question only when you need something from the caller to continue.

# Identity and privacy
- Before you discuss order details, the caller must give either the order number or the rewards number, plus \
their name. Once they have, do not ask again on this call.
- Never read back a full address, phone number or payment card number. You may confirm the last two digits of a \
phone number or the street name alone.
- Do not share information about any order that does not belong to the caller's account.
- Do not store or repeat payment card numbers. If a caller starts reading one, stop them politely and explain \
that payment changes are made through the secure link we text them.
- Notes you add to a case are visible to the caller in their account, so keep them factual and polite.

# Orders, shipping and delivery
- Use lookup_order for status questions, track_shipment for carrier questions and update_address before a \
label is printed. After a label is printed, address changes go through the carrier and may not succeed.
- Standard shipping is three to five business days after the order leaves the warehouse. Expedited orders \
placed before noon ship the same day. Oversized items can ship separately.
- If a package shows as delivered but the caller does not have it, ask them to check around the property and \
with neighbours, then offer to open a carrier trace, which takes up to three business days.
- Carrier delays of more than five days qualify for a refund of the shipping charge. Offer it once.
- Never promise a delivery date the tools do not show. Say "the estimate is" rather than "it will".

# Stock, sizing and products
- Use check_stock for availability. Stock shown is live but can change within minutes during sales.
- For sizing questions, use the knowledge base. Our boots run about half a size small; wide versions exist for \
most footwear. Recommend sizing up when the caller is between sizes.
- Only recommend products that Northwind sells. Do not compare with other retailers' products by name.
- Give temperature ratings as the limit rating and mention that the comfort rating is a few degrees warmer.
- For safety questions about stoves, fuel, or carbon monoxide, give the guidance from the knowledge base and \
never improvise.

# Returns, exchanges and warranty
- Unused items can be returned within sixty days. Rewards members get a free prepaid return label.
- Exchanges ship as soon as the original item is scanned by the carrier. Use start_return for both returns and \
exchanges and set the reason accurately.
- Own-brand gear has a lifetime warranty against defects. Wear and tear, accidents and animal damage are repaired \
at cost. Ask for a photo of the damage to speed up the claim.
- Final-sale items cannot be returned but can be repaired under warranty.

# Rewards program
- Use lookup_member for points, tier and history. Points are worth one dollar per hundred.
- Points expire after eighteen months without a purchase. Do not offer to restore expired points; a specialist \
can review exceptions.
- Never offer points as compensation unless a tool result or policy explicitly allows it.

# Callbacks and escalation
- Offer a callback with schedule_callback when a question needs a specialist, such as warranty disputes, damaged \
deliveries over two hundred dollars, or anything about payments.
- Respect the caller's preferred contact times and number if they gave them. Confirm the day and window, not the \
full number.
- Escalate to a human immediately if the caller mentions an injury, a safety hazard, a legal threat, or asks for \
a human twice.
- If the line is bad or the caller goes silent for a long time, say you will stay on the line for a minute, then \
offer a callback.

# Tools
- Call a tool only when you need information you do not already have from this call or the context.
- Call at most one tool at a time unless the questions are clearly independent.
- If a tool fails, say you could not reach the system right now and offer a callback. Do not retry more than once.
- Tool results and the knowledge-base context are for you; they are not visible to the caller.

# Context
Each turn may include a context block with a caller-status line and a knowledge-base excerpt chosen for the \
current topic. Prefer the context over your general knowledge when they disagree. The context can change from \
one turn to the next; always use the latest one.

# Closing the call
- Before ending, summarise what was done in one sentence, mention any reference number only if the caller asks, \
and ask whether there is anything else.
- Thank the caller for choosing Northwind Outfitters. Keep the goodbye to one short sentence.
"""

_HANDBOOK_CATEGORIES: tuple[tuple[str, str, str, str, str], ...] = (
    # category, return window, warranty, care, fit or use
    ("Backpacking tents", "sixty days", "lifetime on poles and seams", "dry fully before storage", "fit two adults"),
    ("Down sleeping bags", "sixty days unused", "lifetime against defects", "store loose in the cotton sack",
     "match the limit rating to the coldest night"),
    ("Synthetic sleeping bags", "sixty days unused", "lifetime against defects", "wash cold in a front loader",
     "suit damp climates"),
    ("Sleeping pads", "sixty days", "five years on valves", "store unrolled with the valve open",
     "use an R-value of four or more below freezing"),
    ("Hiking boots", "sixty days unworn, thirty days worn if defective", "two years on soles and stitching",
     "dry away from direct heat", "run half a size small"),
    ("Rain jackets", "sixty days", "lifetime on seam tape for two years, then at cost", "wash with technical wash",
     "layer over a fleece"),
    ("Insulated jackets", "sixty days", "lifetime against defects", "wash rarely and dry with tennis balls",
     "fit close to the body"),
    ("Backpacks", "sixty days", "lifetime on frame and seams", "empty crumbs and air out after trips",
     "match the torso length, not the height"),
    ("Stoves and fuel", "thirty days unused; fuel is final sale", "three years on stoves",
     "check the O-ring before each trip", "be used outdoors only"),
    ("Water filters", "thirty days unused", "two years", "never let the filter freeze once wet",
     "be backflushed every few litres of silty water"),
    ("Trekking poles", "sixty days", "lifetime on shafts, one year on locks", "dry the sections apart",
     "be set so the elbow bends at ninety degrees"),
    ("Camp furniture", "sixty days", "two years", "wipe frames and keep fabric dry", "hold the listed weight"),
)  # fmt: skip

_HANDBOOK_INTRO = """\

# Policy handbook
The handbook below is the reference for every product category. It overrides general guidance above when the two \
differ. Quote it in plain spoken words, never verbatim, and only the part the caller needs.
"""

_HANDBOOK_SECTION = """\

## {category}
- Returns: {category_lower} can be returned within {window}. Items must come back with all parts, stuff sacks and \
tags where possible; missing parts are charged at the replacement price, which you should mention before the \
return is started rather than after.
- Warranty: {warranty}. Ask for a photo and the order or rewards number; the specialist team decides within five \
business days and the caller hears back by their preferred contact method.
- Care advice to give: {care}. Callers often ask about care after a problem has happened, so pair the advice with \
what the warranty covers instead of implying the damage was their fault.
- Fit and use: these products should {fit}. When the caller is unsure, offer the sizing or selection guide by text \
message and suggest a store visit if one is nearby.
- Exchanges follow the return rules above; an exchange for the same item in another size or colour ships free once \
the carrier scans the original.
"""

_HANDBOOK_OUTRO = """\

## Exceptions
- A specialist may approve a return outside the window for a documented defect, a delivery more than ten days \
late, or a caller with a medical reason. You may not approve exceptions yourself; offer a callback instead.
- Items bought from other retailers are not covered by Northwind's returns, but own-brand products are still \
covered by the warranty with proof of purchase.
- Rental gear follows the rental agreement, not this handbook; transfer those callers to the rental desk.
- Corporate and team orders above twenty items are handled by the business desk; take a callback request.
- Never quote a policy from memory when the handbook or the knowledge-base context says otherwise.
"""


def _handbook() -> str:
    parts = [_HANDBOOK_INTRO]
    for category, window, warranty, care, fit in _HANDBOOK_CATEGORIES:
        parts.append(
            _HANDBOOK_SECTION.format(
                category=category, category_lower=category.lower(), window=window, warranty=warranty, care=care, fit=fit
            )
        )
    parts.append(_HANDBOOK_OUTRO)
    return "".join(parts)


_HEAVY_PROMPT_EXTRA = """\

# Research tools
On this line you also have research tools: search_catalog for product search, query_inventory for the \
inventory and order database (read-only SQL), fetch_logs for service logs and get_order_history for the \
caller's past orders. Their outputs are long; read them fully, combine them, and answer with the one or two \
facts that matter. Run the searches you need before you answer rather than asking the caller to wait twice.
"""

# ---------------------------------------------------------------------------------------------
# Tools.


def _tool(name: str, description: str, properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
                "additionalProperties": False,
            },
        },
    }


_ACCOUNT = {"type": "string", "description": "The caller's account reference for this call."}
_VOICE_TOOLS: tuple[dict[str, Any], ...] = (
    _tool(
        "lookup_order",
        "Look up an order's status, items and shipping details.",
        {
            "account_ref": _ACCOUNT,
            "order": {"type": "string", "description": "An order number, or 'latest' for the most recent order."},
            "include_items": {"type": "boolean"},
        },
        ("account_ref", "order"),
    ),
    _tool(
        "check_stock",
        "Check live stock of a product by colour and size across warehouses.",
        {
            "product": {"type": "string"},
            "colour": {"type": "string"},
            "size": {"type": "string"},
        },
        ("product",),
    ),
    _tool(
        "track_shipment",
        "Get the carrier tracking events of the caller's shipment.",
        {"account_ref": _ACCOUNT, "order": {"type": "string"}},
        ("account_ref", "order"),
    ),
    _tool(
        "schedule_callback",
        "Book a callback from a specialist.",
        {
            "account_ref": _ACCOUNT,
            "day": {"type": "string"},
            "window": {"type": "string", "enum": list(_WINDOWS)},
            "reason": {"type": "string"},
        },
        ("account_ref", "day", "window", "reason"),
    ),
    _tool(
        "update_address",
        "Change the street or unit of the shipping address before the label is printed.",
        {
            "account_ref": _ACCOUNT,
            "street": {"type": "string"},
            "unit": {"type": "string"},
        },
        ("account_ref", "street"),
    ),
    _tool(
        "start_return",
        "Open a return or exchange and email a prepaid label.",
        {
            "account_ref": _ACCOUNT,
            "product": {"type": "string"},
            "reason": {"type": "string", "enum": ["fit", "damaged", "changed_mind", "wrong_item"]},
        },
        ("account_ref", "product", "reason"),
    ),
    _tool(
        "lookup_member",
        "Get the caller's rewards tier, points balance and recent point activity.",
        {"account_ref": _ACCOUNT},
        ("account_ref",),
    ),
    _tool(
        "search_knowledge",
        "Search the knowledge base of product guides and policies.",
        {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 5}},
        ("query",),
    ),
)
_HEAVY_TOOLS: tuple[dict[str, Any], ...] = (
    _tool(
        "search_catalog",
        "Full-text search of the product catalog with specifications and review summaries.",
        {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 25}},
        ("query",),
    ),
    _tool(
        "query_inventory",
        "Run a read-only SQL query against the inventory and orders database.",
        {"sql": {"type": "string"}},
        ("sql",),
    ),
    _tool(
        "fetch_logs",
        "Fetch recent log lines of a backend service.",
        {"service": {"type": "string"}, "minutes": {"type": "integer", "minimum": 1, "maximum": 1440}},
        ("service", "minutes"),
    ),
    _tool(
        "get_order_history",
        "List the caller's past orders with items and totals.",
        {"account_ref": _ACCOUNT, "months": {"type": "integer", "minimum": 1, "maximum": 60}},
        ("account_ref", "months"),
    ),
)

# ---------------------------------------------------------------------------------------------
# Generation.


@dataclasses.dataclass(frozen=True, slots=True)
class _Spec:
    system_prompt: str
    tools: tuple[dict[str, Any], ...]
    heavy: bool = False
    pauses: bool = False


def _specs() -> dict[str, _Spec]:
    return {
        "voice_support": _Spec(_BASE_PROMPT, _VOICE_TOOLS),
        "tool_heavy": _Spec(_BASE_PROMPT + _HEAVY_PROMPT_EXTRA, _VOICE_TOOLS + _HEAVY_TOOLS, heavy=True),
        "long_system": _Spec(_BASE_PROMPT + _handbook(), _VOICE_TOOLS),
        "ttl_pauses": _Spec(_BASE_PROMPT, _VOICE_TOOLS, pauses=True),
        "long_call": _Spec(_BASE_PROMPT + _handbook(), _VOICE_TOOLS, pauses=True),
    }


_ALNUM = string.ascii_letters + string.digits


class _Generator:
    """Mutable state of one generation run; each turn depends only on the turns before it."""

    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.seed = seed
        self.spec = _specs()[name]
        self.rng = random.Random(f"llmvoice.scenarios:{name}:{seed}")
        rng = self.rng
        self.facts = {
            "name": f"{rng.choice(_FACT_FIRST)} {rng.choice(_FACT_LAST)}",
            "order_number": f"NW-{rng.randint(10000, 99999)}",
            "loyalty_id": f"TRL-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            "delivery_city": rng.choice(_FACT_CITIES),
            "product_preference": f"{rng.choice(_FACT_SIZES)} in {rng.choice(_FACT_COLOURS)}",
            "phone": f"({rng.choice(_FACT_AREA_CODES)}) 555-01{rng.randint(0, 99):02d}",
            "contact_time": (
                f"after {rng.randint(1, 7)}:{rng.choice(range(5, 60, 5)):02d} pm on weekdays"
                if rng.random() < 0.6
                else f"before {rng.randint(7, 10)}:{rng.choice(range(5, 60, 5)):02d} am on weekdays"
            ),
        }
        self.account_ref = "ACC-" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
        self.start_minute = rng.randint(8 * 60, 17 * 60)
        self.call_ids: set[str] = set()
        self.product = rng.choice(_PRODUCTS)
        self.next_tool = rng.randint(3, 5)
        self.next_rotation = 0
        self.context: str | None = None
        self.at_s = 0.0
        self.last_reply_words = 0
        self.last_rounds = 0

    # -- small helpers -------------------------------------------------------------------------

    def other_order(self) -> str:
        while True:
            ref = f"NW-{self.rng.randint(10000, 99999)}"
            if ref != self.facts["order_number"]:
                return ref

    def call_id(self) -> str:
        while True:
            ref = "call_" + "".join(self.rng.choice(_ALNUM) for _ in range(24))
            if ref not in self.call_ids:
                self.call_ids.add(ref)
                return ref

    def date(self, offset_days: int) -> str:
        day = 10 + offset_days % 18
        return f"2025-06-{day:02d}"

    def slots(self) -> dict[str, str]:
        rng = self.rng
        return {
            "product": self.product,
            "colour": rng.choice(_COLOURS),
            "size": rng.choice(_SIZES),
            "day": rng.choice(_DAYS),
            "n": str(rng.randint(2, 9)),
            "ref": self.other_order(),
            "ref2": f"R{rng.randint(100000, 999999)}",
            "street": f"{rng.randint(12, 980)} {rng.choice(_STREETS)}",
            "status": rng.choice(("packed", "shipped", "in transit", "awaiting pickup", "processing")),
            "warehouse": rng.choice(_WAREHOUSES),
            "carrier": rng.choice(_CARRIERS),
            "hub": rng.choice(_HUBS),
            "window": rng.choice(_WINDOWS),
            "points": str(rng.randint(120, 9800)),
            "dollars": str(rng.randint(2, 90)),
            "tier": rng.choice(_TIERS),
            "temp": str(rng.choice((15, 20, 25, 30, 35, 40))),
            "years": str(rng.randint(2, 5)),
            "grams": str(rng.randint(3, 40) * 50),
            "days": str(rng.choice((14, 30, 45, 60))),
            "pct": str(rng.choice((10, 15, 20, 25))),
        }

    def user_text(self, core: str, slots: Mapping[str, str], *, bare: bool = False) -> str:
        rng = self.rng
        opener = "" if bare else rng.choice(_OPENERS)
        closer = "" if bare else rng.choice(_CLOSERS).format(**slots)
        core = core.format(**slots)
        if opener:
            core = core[0].lower() + core[1:] if not core.startswith("I ") and not core.startswith("I'") else core
        text = " ".join(part for part in (opener, core, closer) if part)
        if len(text.split()) > 25:
            text = core
        if len(text.split()) < 5:
            text = f"{core} Thanks for checking."
        return text

    def reply_text(self, body: str, slots: Mapping[str, str], *, bare: bool = False) -> str:
        rng = self.rng
        ack = "" if bare else rng.choice(_ACKS)
        follow = rng.choice(_FOLLOWS)
        body = body.format(**slots)
        text = " ".join(part for part in (ack, body, follow) if part)
        if len(text.split()) > 45:
            text = f"{ack} {body}".strip()
        if len(text.split()) < 10:
            text = f"{text} Is there anything else I can help with?"
        return text

    # -- context -------------------------------------------------------------------------------

    def rotate_context(self, index: int) -> None:
        rng = self.rng
        self.next_rotation = index + rng.randint(3, 5)
        if index > 0 and self.context is not None and rng.random() < 0.12:
            self.context = None
            return
        title, sentences = rng.choice(_KB)
        slots = self.slots()
        chosen = rng.sample(sentences, k=min(len(sentences), rng.randint(5, 6)))
        minute = self.start_minute + int(self.at_s // 60)
        elapsed = int(self.at_s)
        status = (
            f"Caller status: identity {'verified' if index > 1 else 'pending'}; rewards tier {rng.choice(_TIERS)}; "
            f"sentiment {rng.choice(_MOODS)}; local time {minute // 60 % 24:02d}:{minute % 60:02d}; "
            f"call time {elapsed // 60}:{elapsed % 60:02d}; open case notes {rng.randint(0, 4)}."
        )
        body = " ".join(sentence.format(**slots) for sentence in chosen)
        self.context = (
            f"{status}\nKnowledge base KB-{rng.randint(1000, 9999)}, {title} (updated {self.date(rng.randint(0, 40))}):"
            f"\n{body}"
        )

    # -- tool results --------------------------------------------------------------------------

    def sized(self, build: Callable[[int], dict[str, Any]], low: int, high: int, chars_per_token: float) -> str:
        """Grow ``build(n)`` item by item until its JSON reaches a random size in ``[low, high]`` tokens."""
        target = self.rng.randint(low, high) * chars_per_token
        count = 1
        text = json.dumps(build(count), ensure_ascii=False)
        while len(text) < target and count < 200:
            count += 1
            text = json.dumps(build(count), ensure_ascii=False)
        return text

    def voice_tool(self, tool: str, slots: Mapping[str, str]) -> tuple[dict[str, Any], str]:
        rng = self.rng
        ref = self.account_ref
        if tool == "lookup_order":
            args: dict[str, Any] = {"account_ref": ref, "order": "latest", "include_items": True}
            items = [
                {
                    "sku": f"{rng.randint(100000, 999999)}-{rng.randint(10, 99)}",
                    "name": rng.choice(_PRODUCTS),
                    "qty": rng.randint(1, 3),
                    "price": round(rng.uniform(12, 480), 2),
                    "colour": rng.choice(_COLOURS),
                    "size": rng.choice(_SIZES),
                    "status": slots["status"],
                }
                for _ in range(12)
            ]

            placed = self.date(rng.randint(0, 5))

            def build(n: int) -> dict[str, Any]:
                return {
                    "status": slots["status"],
                    "placed": placed,
                    "warehouse": slots["warehouse"],
                    "shipping": {"method": "standard", "eta_business_days": int(slots["n"])},
                    "items": items[:n],
                }

            return args, self.sized(build, 60, 240, 2.8)
        if tool == "check_stock":
            args = {"product": slots["product"], "colour": slots["colour"], "size": slots["size"]}
            variants = [
                {
                    "colour": rng.choice(_COLOURS),
                    "size": rng.choice(_SIZES),
                    "warehouse": rng.choice(_WAREHOUSES),
                    "on_hand": rng.randint(0, 40),
                    "reserved": rng.randint(0, 5),
                }
                for _ in range(20)
            ]

            family, restock = f"NWO-{rng.randint(1000, 9999)}", self.date(rng.randint(5, 20))

            def build(n: int) -> dict[str, Any]:
                return {
                    "product": slots["product"],
                    "sku_family": family,
                    "requested": {"colour": slots["colour"], "size": slots["size"], "on_hand": int(slots["n"])},
                    "variants": variants[:n],
                    "restock_eta": restock,
                }

            return args, self.sized(build, 60, 240, 2.8)
        if tool == "track_shipment":
            args = {"account_ref": ref, "order": "latest"}
            events = [
                {
                    "time": f"{self.date(k)}T{rng.randint(5, 22):02d}:{rng.randint(0, 59):02d}:00",
                    "location": rng.choice(_HUBS),
                    "status": rng.choice(("arrival scan", "departure scan", "in transit", "label created")),
                }
                for k in range(12)
            ]

            tracking, eta = f"1Z{rng.randint(10**9, 10**10 - 1)}", self.date(rng.randint(3, 9))

            def build(n: int) -> dict[str, Any]:
                return {
                    "carrier": slots["carrier"],
                    "tracking": tracking,
                    "service": "ground",
                    "estimated_delivery": eta,
                    "events": events[:n],
                }

            return args, self.sized(build, 60, 240, 2.9)
        if tool == "schedule_callback":
            args = {
                "account_ref": ref,
                "day": slots["day"],
                "window": slots["window"],
                "reason": "specialist follow-up",
            }
            result = {
                "confirmed": True,
                "callback_id": slots["ref2"],
                "day": slots["day"],
                "window": slots["window"],
                "queue": rng.choice(("warranty", "orders", "returns", "rewards")),
                "assigned_to": rng.choice(_STAFF),
                "sms_confirmation": True,
                "note": "Callback respects the contact preferences stored on the case.",
            }
            return args, json.dumps(result, ensure_ascii=False)
        if tool == "update_address":
            args = {"account_ref": ref, "street": slots["street"], "unit": slots["n"]}
            result = {
                "updated": True,
                "street": slots["street"],
                "unit": slots["n"],
                "label_regenerated": True,
                "validation": {"deliverable": True, "residential": True, "source": "carrier address service"},
                "affected_shipments": rng.randint(1, 2),
                "changed_by": rng.choice(_STAFF),
            }
            return args, json.dumps(result, ensure_ascii=False)
        if tool == "start_return":
            args = {
                "account_ref": ref,
                "product": slots["product"],
                "reason": rng.choice(("fit", "damaged", "changed_mind")),
            }
            result = {
                "rma": slots["ref2"],
                "product": slots["product"],
                "label": {"carrier": slots["carrier"], "emailed": True, "expires_in_days": 30},
                "refund_estimate_days": int(slots["n"]),
                "policy_excerpt": "Unused items within the return window are refunded to the original payment method.",
                "drop_off_options": rng.sample(("carrier store", "any Northwind store", "scheduled pickup"), k=2),
            }
            return args, json.dumps(result, ensure_ascii=False)
        if tool == "lookup_member":
            args = {"account_ref": ref}
            history = [
                {
                    "date": self.date(k * 3),
                    "points": rng.randint(-500, 400),
                    "reason": rng.choice(("purchase", "return", "birthday bonus", "redeemed")),
                }
                for k in range(12)
            ]

            since = 2012 + rng.randint(0, 12)

            def build(n: int) -> dict[str, Any]:
                return {
                    "tier": slots["tier"],
                    "points": int(slots["points"]),
                    "dollar_value": int(slots["dollars"]),
                    "member_since": since,
                    "history": history[:n],
                }

            return args, self.sized(build, 60, 240, 2.65)
        # search_knowledge
        args = {"query": f"{slots['product']} care warranty rating", "limit": 3}
        articles = [(title, rng.sample(sentences, k=3)) for title, sentences in rng.sample(_KB, k=3)]

        def build_articles(n: int) -> dict[str, Any]:
            return {
                "results": [
                    {
                        "article": f"KB-{1000 + 37 * k}",
                        "title": title,
                        "excerpt": " ".join(s.format(**slots) for s in sen),
                    }
                    for k, (title, sen) in enumerate(articles[:n])
                ]
            }

        return args, self.sized(build_articles, 60, 220, 4.3)

    def heavy_tool(self, tool: str, slots: Mapping[str, str]) -> tuple[dict[str, Any], str]:
        rng = self.rng
        salt = rng.getrandbits(64)
        if tool == "search_catalog":
            args: dict[str, Any] = {"query": f"{slots['product']} {slots['colour']}", "limit": 25}

            def build(n: int) -> dict[str, Any]:
                local = random.Random(salt)
                results = []
                for _ in range(n):
                    title, sentences = local.choice(_KB)
                    results.append(
                        {
                            "sku": f"NWO-{local.randint(1000, 9999)}-{local.randint(10, 99)}",
                            "name": local.choice(_PRODUCTS),
                            "price": round(local.uniform(15, 650), 2),
                            "weight_g": local.randint(80, 4200),
                            "rating": round(local.uniform(3.1, 4.9), 1),
                            "reviews": local.randint(3, 2400),
                            "colours": local.sample(_COLOURS, k=3),
                            "summary": " ".join(s.format(**slots) for s in local.sample(sentences, k=2)),
                            "guide": title,
                        }
                    )
                return {"query": args["query"], "total": 20 + n * 3, "results": results}

            return args, self.sized(build, 480, 1300, 3.3)
        if tool == "query_inventory":
            args = {
                "sql": (
                    "SELECT sku, name, colour, size, warehouse, on_hand, reserved, next_restock FROM inventory "
                    f"WHERE name LIKE '%{slots['product'].split()[0]}%' ORDER BY on_hand DESC"
                )
            }

            def build(n: int) -> dict[str, Any]:
                local = random.Random(salt)
                rows = [
                    [
                        f"NWO-{local.randint(1000, 9999)}-{local.randint(10, 99)}",
                        slots["product"],
                        local.choice(_COLOURS),
                        local.choice(_SIZES),
                        local.choice(_WAREHOUSES),
                        local.randint(0, 90),
                        local.randint(0, 9),
                        self.date(local.randint(0, 30)),
                    ]
                    for _ in range(n)
                ]
                columns = ["sku", "name", "colour", "size", "warehouse", "on_hand", "reserved", "next_restock"]
                return {"columns": columns, "rows": rows, "row_count": n, "elapsed_ms": 12 + n}

            return args, self.sized(build, 480, 1300, 2.2)
        if tool == "fetch_logs":
            service = rng.choice(("order-router", "payment-gateway", "label-service", "inventory-sync", "sms-notify"))
            args = {"service": service, "minutes": rng.choice((30, 60, 120, 240))}

            def build(n: int) -> dict[str, Any]:
                local = random.Random(salt)
                lines = []
                for k in range(n):
                    level = local.choice(("INFO", "INFO", "INFO", "WARN", "ERROR"))
                    lines.append(
                        f"2025-06-{10 + k % 18:02d}T{local.randint(0, 23):02d}:{local.randint(0, 59):02d}:"
                        f"{local.randint(0, 59):02d}Z {level} {service} req={local.getrandbits(40):010x} "
                        f"warehouse={local.choice(_WAREHOUSES)} carrier={local.choice(_CARRIERS)} "
                        f"latency_ms={local.randint(8, 2400)} "
                        + local.choice(
                            (
                                "label printed",
                                "retrying upstream call",
                                "queue depth high",
                                "shipment manifest closed",
                                "webhook delivered",
                                "timeout waiting for carrier API",
                            )
                        )
                    )
                return {"service": service, "window_minutes": args["minutes"], "lines": lines}

            return args, self.sized(build, 480, 1300, 3.0)
        # get_order_history
        args = {"account_ref": self.account_ref, "months": rng.choice((6, 12, 24))}

        def build_orders(n: int) -> dict[str, Any]:
            local = random.Random(salt)
            orders = []
            for _ in range(n):
                order = self.facts["order_number"]
                while order == self.facts["order_number"]:
                    order = f"NW-{local.randint(10000, 99999)}"
                orders.append(
                    {
                        "order": order,
                        "placed": self.date(local.randint(0, 200)),
                        "status": local.choice(("delivered", "returned", "partially returned", "cancelled")),
                        "total": round(local.uniform(20, 900), 2),
                        "items": [
                            {
                                "name": local.choice(_PRODUCTS),
                                "colour": local.choice(_COLOURS),
                                "size": local.choice(_SIZES),
                            }
                            for _ in range(local.randint(1, 3))
                        ],
                    }
                )
            return {"account_ref": self.account_ref, "months": args["months"], "orders": orders}

        return args, self.sized(build_orders, 480, 1300, 2.8)

    def tool_round(self, calls: Sequence[tuple[str, dict[str, Any], str]]) -> Step:
        tool_calls = []
        results = []
        for tool, args, content in calls:
            ref = self.call_id()
            tool_calls.append(
                {
                    "id": ref,
                    "type": "function",
                    "function": {"name": tool, "arguments": json.dumps(args, ensure_ascii=False)},
                }
            )
            results.append({"role": "tool", "tool_call_id": ref, "content": content})
        return Step(
            assistant={"role": "assistant", "content": None, "tool_calls": tool_calls}, tool_results=tuple(results)
        )

    # -- turns ---------------------------------------------------------------------------------

    def pause_kind(self, index: int) -> str | None:
        if not self.spec.pauses or index < 10:
            return None
        if index % 60 == 45:
            return "callback"
        if index % 20 == 12:
            return "hold"
        return None

    def turn(self, index: int) -> Turn:
        rng = self.rng
        if rng.random() < 0.2:
            self.product = rng.choice(_PRODUCTS)
        slots = self.slots()
        steps: list[Step] = []
        planted = _PLANT_BY_TURN.get(index)
        pause = self.pause_kind(index)
        upcoming = self.pause_kind(index + 1)
        due = index >= self.next_tool
        if planted is not None:
            user = rng.choice(_PLANT_UTTERANCES[planted]).format(v=self.facts[planted])
            reply = rng.choice(_PLANT_REPLIES[planted])
        elif pause is not None:
            user = rng.choice(_CALLBACK_RESUMES if pause == "callback" else _RESUMES)
            reply = rng.choice(_CALLBACK_RESUME_REPLIES if pause == "callback" else _RESUME_REPLIES)
        elif upcoming is not None:
            user = rng.choice(_CALLBACK_REQUESTS if upcoming == "callback" else _HOLD_REQUESTS)
            reply = rng.choice(_CALLBACK_ACKS if upcoming == "callback" else _HOLD_ACKS)
        elif self.spec.heavy:
            user, reply, steps = self.heavy_turn(slots)
        else:
            intent_name = rng.choice(_TOOL_INTENTS) if due else rng.choices(_INTENT_NAMES, _INTENT_WEIGHTS)[0]
            intent = _INTENTS[intent_name]
            bare = bool(intent.get("bare"))
            user = self.user_text(rng.choice(intent["user"]), slots, bare=bare)
            if due:
                tool = str(intent["tool"])
                args, content = self.voice_tool(tool, slots)
                steps.append(self.tool_round([(tool, args, content)]))
                reply = self.reply_text(rng.choice(intent["tool_reply"]), slots)
                self.next_tool = index + rng.randint(4, 6)
            else:
                reply = self.reply_text(rng.choice(intent["reply"]), slots, bare=bare)
        steps.append(Step(assistant={"role": "assistant", "content": reply}))

        # Timing: the previous reply plays, the caller pauses (or is away), then speaks.
        speak = min(6.0, max(2.0, len(user.split()) / rng.uniform(2.4, 3.2)))
        if index == 0:
            self.at_s = rng.uniform(4.0, 8.0) + speak
        else:
            playout = min(10.0, max(3.0, self.last_reply_words / rng.uniform(2.3, 2.9)))
            gap = rng.uniform(0.3, 1.0) + sum(rng.uniform(0.6, 1.8) for _ in range(self.last_rounds))
            if pause == "hold":
                gap += rng.uniform(360.0, 540.0)
            elif pause == "callback":
                gap += rng.uniform(3700.0, 5400.0)
            self.at_s += playout + gap + speak
        self.at_s = round(self.at_s, 2)
        self.last_reply_words = len(reply.split())
        self.last_rounds = len(steps) - 1
        if index >= self.next_rotation or pause is not None:
            self.rotate_context(index)
        return Turn(at_s=self.at_s, user=user, context=self.context, steps=tuple(steps))

    def heavy_turn(self, slots: Mapping[str, str]) -> tuple[str, str, list[Step]]:
        rng = self.rng
        core, summary = rng.choice(_HEAVY_REQUESTS)
        user = self.user_text(core, slots)
        rounds = rng.choices((0, 1, 2, 3, 4), weights=(4, 8, 36, 32, 20))[0]
        tools = ("search_catalog", "query_inventory", "fetch_logs", "get_order_history")
        steps = []
        for _ in range(rounds):
            picked = rng.sample(tools, k=2 if rng.random() < 0.2 else 1)
            steps.append(self.tool_round([(tool, *self.heavy_tool(tool, slots)) for tool in picked]))
        reply = self.reply_text(summary, slots)
        return user, reply, steps


_HEAVY_REQUESTS: tuple[tuple[str, str], ...] = (
    (
        "Can you find me a {product} that ships this week and compare the three best ones?",
        "Of the options, the {colour} one ships first, from {warehouse}, and it has the best reviews.",
    ),
    (
        "Why did my last two orders both get delayed? Can you dig into what happened?",
        "The logs show a carrier timeout at the {warehouse} warehouse, which held both labels for {n} days.",
    ),
    (
        "Look through my past orders and tell me what size I bought last time.",
        "Your last order had the {product} in size {size}, and you kept it, so that size should work.",
    ),
    (
        "Which warehouse has the most {product}s in {colour}, and can they ship by {day}?",
        "{warehouse} has the most in {colour}, {n} on hand, and it can ship by {day}.",
    ),
    (
        "Was there a problem with payments this morning? My card got charged twice.",
        "There was a retry in the payment service this morning; the second charge is a hold that drops off.",
    ),
    (
        "Can you check every size of the {product} and tell me which ones are low?",
        "Sizes {size} and a couple of others are low, under {n} units, everything else is well stocked.",
    ),
    (
        "I want a full picture: stock, price and reviews for the {product}, please.",
        "It's in stock in {colour}, rated well by hikers, and priced the same as last month.",
    ),
)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in SCENARIOS:
        raise ConfigurationError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    return name


def _check_turns(turns: object, name: str) -> int:
    if turns is None:
        return DEFAULT_TURNS[name]
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise ConfigurationError(f"turns must be an integer >= 1 (for example {DEFAULT_TURNS[name]}), not {turns!r}")
    return turns


def generate(name: str, *, turns: int | None = None, seed: int = 0) -> Scenario:
    """Generate a scenario.

    The result depends only on ``name``, ``turns`` and ``seed``, and the first *k* turns of a
    longer run are identical to a run of *k* turns.

    Args:
        name: one of :data:`SCENARIOS`.
        turns: the number of turns (default: :data:`DEFAULT_TURNS` for ``name``).
        seed: the random seed; each seed gives other utterances, timings and fact values.

    Returns:
        The scenario, with exactly ``turns`` turns and the facts planted within them.

    Raises:
        ConfigurationError: ``name`` is unknown, or ``turns`` or ``seed`` is not a valid integer.
    """
    name = _check_name(name)
    count = _check_turns(turns, name)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigurationError(f"seed must be an integer, not {seed!r}")
    generator = _Generator(name, seed)
    made = tuple(generator.turn(index) for index in range(count))
    facts = tuple(
        Fact(key=key, value=generator.facts[key], turn=turn) for key, turn in _PLANT_TURNS.items() if turn < count
    )
    return Scenario(
        name=name,
        description=SCENARIOS[name],
        seed=seed,
        system_prompt=generator.spec.system_prompt,
        tools=generator.spec.tools,
        turns=made,
        facts=facts,
    )


# ---------------------------------------------------------------------------------------------
# JSON.


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def scenario_to_json(scenario: Scenario) -> str:
    """Serialise a scenario to JSON.

    The output is deterministic: the same scenario always gives the same text, with keys in a
    fixed order, one-space indentation, non-ASCII characters kept and a trailing newline.

    Args:
        scenario: the scenario.

    Returns:
        The JSON text, an object with ``"schema": 1`` and the scenario's fields.
    """
    document = {
        "schema": SCHEMA_VERSION,
        "name": scenario.name,
        "description": scenario.description,
        "seed": scenario.seed,
        "system_prompt": scenario.system_prompt,
        "tools": _plain(scenario.tools),
        "facts": [{"key": fact.key, "value": fact.value, "turn": fact.turn} for fact in scenario.facts],
        "turns": [
            {
                "at_s": turn.at_s,
                "user": turn.user,
                "context": turn.context,
                "steps": [
                    {"assistant": _plain(step.assistant), "tool_results": _plain(step.tool_results)}
                    for step in turn.steps
                ],
            }
            for turn in scenario.turns
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def _fail(where: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"invalid scenario JSON at {where}: {problem}")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise _fail(path, "missing")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise _fail(path, f"expected {' or '.join(k.__name__ for k in kinds)}, got bool")
    if not isinstance(value, kinds):
        raise _fail(path, f"expected {' or '.join(k.__name__ for k in kinds)}, got {_type_name(value)}")
    return value


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _fail(where, "contains a lone surrogate") from exc


def _parse_tools(raw: list[Any]) -> tuple[tuple[dict[str, Any], ...], set[str]]:
    names: set[str] = set()
    for index, tool in enumerate(raw):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise _fail(where, f"expected object, got {_type_name(tool)}")
        if tool.get("type") != "function":
            raise _fail(f"{where}.type", f"expected 'function', got {tool.get('type')!r}")
        function = _get(tool, "function", dict, where)
        names.add(_get(function, "name", str, f"{where}.function"))
    return tuple(raw), names


def _parse_step(raw: Any, where: str, last: bool, tools: set[str], ids: set[str]) -> Step:
    if not isinstance(raw, dict):
        raise _fail(where, f"expected object, got {_type_name(raw)}")
    assistant = _get(raw, "assistant", dict, where)
    results = _get(raw, "tool_results", list, where)
    if assistant.get("role") != "assistant":
        raise _fail(f"{where}.assistant.role", f"expected 'assistant', got {assistant.get('role')!r}")
    calls = assistant.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _fail(f"{where}.assistant.tool_calls", f"expected list, got {_type_name(calls)}")
    content = assistant.get("content")
    if last:
        if calls:
            raise _fail(
                f"{where}.assistant.tool_calls", "the last step of a turn is the spoken reply, without tool calls"
            )
        if not isinstance(content, str) or not content.strip():
            raise _fail(f"{where}.assistant.content", "the last step needs a non-empty string reply")
    elif not calls:
        raise _fail(f"{where}.assistant.tool_calls", "every step but the last of a turn must call tools")
    if content is not None and not isinstance(content, str):
        raise _fail(f"{where}.assistant.content", f"expected str or null, got {_type_name(content)}")
    if isinstance(content, str):
        _check_text(content, f"{where}.assistant.content")
    call_ids: list[str] = []
    for index, call in enumerate(calls):
        call_where = f"{where}.assistant.tool_calls[{index}]"
        if not isinstance(call, dict):
            raise _fail(call_where, f"expected object, got {_type_name(call)}")
        ref = _get(call, "id", str, call_where)
        if ref in ids:
            raise _fail(f"{call_where}.id", f"duplicate tool call id {ref!r}")
        ids.add(ref)
        call_ids.append(ref)
        if call.get("type") != "function":
            raise _fail(f"{call_where}.type", f"expected 'function', got {call.get('type')!r}")
        function = _get(call, "function", dict, call_where)
        name = _get(function, "name", str, f"{call_where}.function")
        if name not in tools:
            raise _fail(f"{call_where}.function.name", f"tool {name!r} is not defined in tools")
        _get(function, "arguments", str, f"{call_where}.function")
    if len(results) != len(call_ids):
        raise _fail(
            f"{where}.tool_results", f"expected {len(call_ids)} results (one per tool call), got {len(results)}"
        )
    for index, (result, ref) in enumerate(zip(results, call_ids, strict=True)):
        result_where = f"{where}.tool_results[{index}]"
        if not isinstance(result, dict):
            raise _fail(result_where, f"expected object, got {_type_name(result)}")
        if result.get("role") != "tool":
            raise _fail(f"{result_where}.role", f"expected 'tool', got {result.get('role')!r}")
        answered = _get(result, "tool_call_id", str, result_where)
        if answered != ref:
            raise _fail(f"{result_where}.tool_call_id", f"{answered!r} does not match the call {ref!r}")
        _check_text(_get(result, "content", str, result_where), f"{result_where}.content")
    return Step(assistant=assistant, tool_results=tuple(results))


def scenario_from_json(text: str) -> Scenario:
    """Parse and validate a scenario written by :func:`scenario_to_json` (or by hand).

    Args:
        text: the JSON text.

    Returns:
        The scenario.

    Raises:
        ConfigurationError: the text is not valid JSON, has a newer or unknown schema version, or
            breaks a rule of the format; the message names the offending field, with the turn
            and step index (``turns[3].steps[0].tool_results[1].tool_call_id``).
    """
    try:
        document = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid scenario JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _fail("top level", f"expected object, got {_type_name(document)}")
    schema = _get(document, "schema", int, "")
    if schema > SCHEMA_VERSION:
        raise _fail("schema", f"version {schema} is newer than the supported version {SCHEMA_VERSION}")
    if schema < 1:
        raise _fail("schema", f"unknown version {schema}")
    name = _get(document, "name", str, "")
    description = _get(document, "description", str, "")
    seed = _get(document, "seed", int, "")
    system_prompt = _get(document, "system_prompt", str, "")
    _check_text(system_prompt, "system_prompt")
    tools, tool_names = _parse_tools(_get(document, "tools", list, ""))
    raw_turns = _get(document, "turns", list, "")
    if not raw_turns:
        raise _fail("turns", "a scenario needs at least one turn")
    ids: set[str] = set()
    turns: list[Turn] = []
    previous = 0.0
    for index, raw in enumerate(raw_turns):
        where = f"turns[{index}]"
        if not isinstance(raw, dict):
            raise _fail(where, f"expected object, got {_type_name(raw)}")
        at_s = float(_get(raw, "at_s", (int, float), where))
        if at_s < previous:
            problem = "must be >= 0" if index == 0 else f"decreases ({at_s} < {previous} of the previous turn)"
            raise _fail(f"{where}.at_s", problem)
        previous = at_s
        user = _get(raw, "user", str, where)
        _check_text(user, f"{where}.user")
        context = _get(raw, "context", (str, type(None)), where)
        if context is not None:
            _check_text(context, f"{where}.context")
        raw_steps = _get(raw, "steps", list, where)
        if not raw_steps:
            raise _fail(f"{where}.steps", "a turn needs at least one step")
        steps = tuple(
            _parse_step(step, f"{where}.steps[{k}]", k == len(raw_steps) - 1, tool_names, ids)
            for k, step in enumerate(raw_steps)
        )
        turns.append(Turn(at_s=at_s, user=user, context=context, steps=steps))
    facts: list[Fact] = []
    for index, raw in enumerate(_get(document, "facts", list, "")):
        where = f"facts[{index}]"
        if not isinstance(raw, dict):
            raise _fail(where, f"expected object, got {_type_name(raw)}")
        turn = _get(raw, "turn", int, where)
        if not 0 <= turn < len(turns):
            raise _fail(f"{where}.turn", f"{turn} is outside the {len(turns)} turns")
        facts.append(Fact(key=_get(raw, "key", str, where), value=_get(raw, "value", str, where), turn=turn))
    return Scenario(
        name=name,
        description=description,
        seed=seed,
        system_prompt=system_prompt,
        tools=tools,
        turns=tuple(turns),
        facts=tuple(facts),
    )


def load_scenario(name_or_path: str, *, turns: int | None = None, seed: int = 0) -> Scenario:
    """Generate a scenario by name, or load one from a JSON file.

    Args:
        name_or_path: a name in :data:`SCENARIOS`, or a path ending in ``.json``.
        turns: the number of turns. For a name, the default is :data:`DEFAULT_TURNS`; for a
            file, the default is all of its turns, and a smaller number keeps the first ones
            (and the facts planted in them).
        seed: the seed of a generated scenario (ignored for a file).

    Returns:
        The scenario.

    Raises:
        ConfigurationError: the name is unknown and not a ``.json`` path, the file cannot be
            read or is invalid, or ``turns`` is not an integer >= 1 or exceeds the file's turns.
    """
    if name_or_path in SCENARIOS:
        return generate(name_or_path, turns=turns, seed=seed)
    if not name_or_path.endswith(".json"):
        raise ConfigurationError(
            f"unknown scenario {name_or_path!r}; expected one of {', '.join(SCENARIOS)} or a path ending in .json"
        )
    try:
        text = Path(name_or_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read scenario file {name_or_path!r}: {exc}") from exc
    scenario = scenario_from_json(text)
    if turns is None:
        return scenario
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise ConfigurationError(f"turns must be an integer >= 1, not {turns!r}")
    if turns > len(scenario.turns):
        raise ConfigurationError(
            f"turns={turns} exceeds the {len(scenario.turns)} turns in scenario file {name_or_path!r}"
        )
    return dataclasses.replace(
        scenario, turns=scenario.turns[:turns], facts=tuple(fact for fact in scenario.facts if fact.turn < turns)
    )


def scenario_stats(scenario: Scenario) -> dict[str, int | float]:
    """Summary figures of a scenario.

    Args:
        scenario: the scenario.

    Returns:
        ``turns``; ``requests`` (steps, one LLM request each); ``tool_calls``; ``facts``;
        ``system_prompt_tokens`` (``o200k_base`` when its data is on disk, else characters / 4);
        ``duration_s`` (the last turn's ``at_s``).
    """
    encoding = load_encoding("o200k_base")
    if encoding is not None:
        prompt_tokens = len(encoding.encode(scenario.system_prompt, disallowed_special=()))
    else:
        prompt_tokens = len(scenario.system_prompt) // 4
    steps = [step for turn in scenario.turns for step in turn.steps]
    return {
        "turns": len(scenario.turns),
        "requests": len(steps),
        "tool_calls": sum(len(step.assistant.get("tool_calls") or ()) for step in steps),
        "facts": len(scenario.facts),
        "system_prompt_tokens": prompt_tokens,
        "duration_s": scenario.turns[-1].at_s if scenario.turns else 0.0,
    }
