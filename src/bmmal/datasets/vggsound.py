"""VGGSound (Chen et al., 2020): 10 s YouTube clips of 309 sound classes, audio + frames.

Layout under `root` (the reference's; see docs/paper-datasets.md):
    audio/{train,test}/<label>/<clip id>.wav
    frames/{train,test}/<label>/<clip id>/frame_*.jpg    (10 frames extracted per clip)
    vggsound_{train,test}.json                           optional split file, in `root` or beside it
Spectrograms are standardised with the reference's VGGSound statistics (mean -3.0093, std 2.7911).
Class indices follow the reference's fixed order of the 309 classes (`CLASSES`), so label i means the
same class as in the reference's checkpoints and metrics; the `classes` option replaces the list.
"""

from __future__ import annotations

from bmmal.datasets.audiovisual import AVLayout, load_audiovisual

# The reference's class order (labels are these folder names).
CLASSES = ('ice cream truck ice cream van', 'people babbling', 'mouse clicking', 'cat caterwauling',
           'cap gun shooting', 'eagle screaming', 'planing timber', 'goose honking', 'snake hissing',
           'owl hooting', 'cell phone buzzing', 'horse clip-clop', 'sheep bleating', 'swimming',
           'donkey ass braying', 'typing on computer keyboard', 'wind chime', 'child singing', 'people gargling',
           'cattle bovinae cowbell', 'mouse squeaking', 'underwater bubbling', 'firing cannon', 'playing bassoon',
           'arc welding', 'playing sitar', 'hedge trimmer running', 'subway metro underground', 'lawn mowing',
           'slot machine', 'playing darts', 'playing tabla', 'playing shofar', 'people eating noodle',
           'air conditioning noise', 'sharpen knife', 'people eating', 'driving motorcycle', 'baby laughter',
           'lions roaring', 'raining', 'sea lion barking', 'dog growling', 'tapping guitar', 'sliding door',
           'sloshing water', 'people battle cry', 'gibbon howling', 'playing guiro', 'hair dryer drying',
           'rowboat canoe kayak rowing', 'ambulance siren', 'woodpecker pecking tree', 'smoke detector beeping',
           'playing bagpipes', 'wind rustling leaves', 'reversing beeps', 'people eating crisps',
           'playing vibraphone', 'people crowd', 'playing volleyball', 'playing cornet', 'children shouting',
           'opening or closing drawers', 'playing washboard', 'cutting hair with electric trimmers', 'wind noise',
           'typing on typewriter', 'skiing', 'tornado roaring', 'hail', 'parrot talking', 'canary calling',
           'chinchilla barking', 'heart sounds heartbeat', 'singing choir', 'shot football', 'striking pool',
           'opening or closing car electric windows', 'playing harpsichord', 'train wheels squealing',
           'people slapping', 'people farting', 'printer printing', 'male speech man speaking', 'driving buses',
           'dog barking', 'airplane', 'playing harp', 'playing double bass', 'vehicle horn car horn honking',
           'hammering nails', 'baby babbling', 'playing gong', 'roller coaster running', 'police radio chatter',
           'playing harmonica', 'snake rattling', 'cow lowing', 'playing bugle', 'horse neighing', 'orchestra',
           'car engine idling', 'people hiccup', 'playing cymbal', 'bird squawking', 'race car auto racing',
           'playing drum kit', 'helicopter', 'ocean burbling', 'playing castanets', 'ice cracking',
           'striking bowling', 'chimpanzee pant-hooting', 'fly housefly buzzing', 'dog whimpering',
           'volcano explosion', 'bee wasp etc buzzing', 'lathe spinning', 'people shuffling', 'thunder',
           'footsteps on snow', 'playing djembe', 'crow cawing', 'basketball bounce', 'driving snowmobile',
           'otter growling', 'yodelling', 'male singing', 'playing timpani', 'playing congas', 'people booing',
           'dog bow-wow', 'people sneezing', 'police car (siren)', 'playing banjo', 'bowling impact',
           'magpie calling', 'splashing water', 'bird chirping tweeting', 'playing snare drum', 'beat boxing',
           'playing hockey', 'skidding', 'waterfall burbling', 'tractor digging', 'people slurping',
           'people clapping', 'playing timbales', 'playing zither', 'playing french horn', 'rope skipping',
           'elephant trumpeting', 'motorboat speedboat acceleration', 'people belly laughing',
           'playing badminton', 'mynah bird singing', 'pigeon dove cooing', 'car passing by', 'people screaming',
           'playing oboe', 'playing electronic organ', 'missile launch', 'ferret dooking', 'bird wings flapping',
           'child speech kid speaking', 'people cheering', 'francolin calling', 'telephone bell ringing',
           'playing hammond organ', 'people marching', 'door slamming', 'playing table tennis', 'chicken crowing',
           'playing piano', 'playing electric guitar', 'chicken clucking', 'people whispering',
           'electric grinder grinding', 'zebra braying', 'people whistling', 'ripping paper', 'air horn',
           'baby crying', 'chipmunk chirping', 'dinosaurs bellowing', 'dog baying', 'lions growling',
           'whale calling', 'female speech woman speaking', 'playing flute', 'warbler chirping', 'spraying water',
           'running electric fan', 'playing trumpet', 'pheasant crowing', 'cricket chirping', 'playing erhu',
           'playing accordion', 'playing bongo', 'civil defense siren', 'car engine starting', 'penguins braying',
           'scuba diving', 'tap dancing', 'playing steelpan', 'lighting firecrackers', 'playing tennis',
           'people eating apple', 'sea waves', 'wood thrush calling', 'electric shaver electric razor shaving',
           'goat bleating', 'lip smacking', 'duck quacking', 'foghorn', 'cat hissing', 'playing acoustic guitar',
           'coyote howling', 'playing clarinet', 'train whistling', 'playing didgeridoo', 'popping popcorn',
           'railroad car train wagon', 'eating with cutlery', 'playing tambourine', 'disc scratching',
           'people sobbing', 'people finger snapping', 'playing steel guitar slide guitar', 'playing synthesizer',
           'sailing', 'bouncing on trampoline', 'vacuum cleaner cleaning floors', 'strike lighter', 'metronome',
           'fire crackling', 'playing trombone', 'pig oinking', 'cattle mooing', 'chopping food',
           'people humming', 'airplane flyby', 'playing theremin', 'people giggling', 'people burping',
           'playing cello', 'playing saxophone', 'barn swallow calling', 'mosquito buzzing',
           'people nose blowing', 'alarm clock ringing', 'singing bowl', 'playing bass guitar', 'cat meowing',
           'bull bellowing', 'playing lacrosse', 'playing tympani', 'baltimore oriole calling',
           'engine accelerating revving vroom', 'playing glockenspiel', 'playing violin fiddle',
           'blowtorch igniting', 'cat growling', 'pumping water', 'opening or closing car doors',
           'stream burbling', 'cupboard opening or closing', 'fire truck siren', 'fireworks banging',
           'people coughing', 'forging swords', 'elk bugling', 'church bell ringing', 'golf driving', 'rapping',
           'playing bass drum', 'machine gun shooting', 'cheetah chirrup', 'mouse pattering', 'playing ukulele',
           'cat purring', 'firing muskets', 'using sewing machines', 'squishing water',
           'alligators crocodiles hissing', 'people sniggering', 'chopping wood', 'skateboarding',
           'playing marimba xylophone', 'turkey gobbling', 'toilet flushing', 'female singing',
           'plastic bottle crushing', 'cuckoo bird calling', 'fox barking', 'black capped chickadee calling',
           'dog howling', 'playing squash', 'chainsawing trees', 'train horning', 'frog croaking',
           'playing mandolin', 'car engine knocking', 'eletric blender running', 'people running',
           'writing on blackboard with chalk', 'bathroom ventilation fan running', 'playing tuning fork')

LAYOUT = AVLayout(
    name="vggsound",
    audio_dir=lambda root, split: root / "audio" / split,
    frames_dir=lambda root, split: root / "frames" / split,
    # the reference writes its split file beside the data folder; inside it is accepted too
    split_files=lambda root, split: (root / f"vggsound_{split}.json", root.parent / f"vggsound_{split}.json"),
    anchors=("audio", "frames"),
    spectrogram_mean=-3.0093,
    spectrogram_std=2.7911,
)


def load_vggsound(modalities=None, seed: int = 0, classes=CLASSES, **options):
    """`classes` defaults to the reference's 309 classes in its order; a label folder outside them is an
    error naming it."""
    return load_audiovisual(LAYOUT, modalities, seed, classes=classes, **options)
