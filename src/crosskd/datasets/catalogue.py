"""The datasets crosskd knows, one entry each: add a dataset by adding its entry here (the
published ones, and the layout `crosskd extract` writes own videos in)."""

from __future__ import annotations

from crosskd.datasets.spec import (DatasetLayout, DatasetSpec, FeatureTarball, PublishedModel,
                                   SynthDefaults)

_CE = "CE+ + caption KD"
_TT = "TeachText-CE+ + caption KD"
#: split lists that several datasets share, and the fractions synth gives them.
_TRAIN_VAL_TEST = {"train_list.txt": (0.0, 0.7), "val_list.txt": (0.7, 0.85),
                   "test_list.txt": (0.85, 1.0)}

MSRVTT = DatasetSpec(
    "MSRVTT",
    DatasetLayout(
        name="MSRVTT",
        splits={
            "full-val": ("train_list_full.txt", "val_list_full.txt"),
            "full-test": ("train_list_full.txt", "test_list_full.txt"),
            "jsfusion": ("train_list_jsfusion.txt", "val_list_jsfusion.txt"),
            "miech": ("train_list_miech.txt", "test_list_miech.txt"),
        },
        custom_paths={
            "audio": ("aggregated_audio_feats/Audio_MSRVTT_new.pickle",),
            "face": ("aggregated_face_feats/facefeats-avg.pickle",),
            "ocr": ("aggregated_ocr_feats/ocr-raw.pickle",),
            "speech": ("aggregated_speech/speech-w2v.pickle",),
        },
        text_feat_overrides={"openai": "w2v_MSRVTT_openAIGPT.pickle"},
        caption_index_files={"jsfusion": "jsfusion_val_caption_idx.pkl"},
        # the 1k-B split of Miech et al. comes with that paper's own features
        split_custom_paths={"miech": {
            "antoine-rgb": ("antoine/resnet_features.pickle",),
            "audio": ("antoine/audio_features.pickle",),
            "flow": ("antoine/flow_features.pickle",),
            "face": ("antoine/facefeats-clone.pickle",),
        }},
    ),
    FeatureTarball("MSRVTT", "MSRVTT", {
        "734650c3b98509996da75cdedc12101836624917": "current release",
        "311529eeb17527a728a1b930f64415dc15a11298": "older release",
    }),
    SynthDefaults(
        token_experts=("audio", "speech"), captions_per_video=20, video_id_prefix="video",
        split_fractions={
            "train_list_full.txt": (0.0, 0.65), "val_list_full.txt": (0.65, 0.70),
            "test_list_full.txt": (0.70, 1.0), "train_list_jsfusion.txt": (0.0, 0.9),
            "val_list_jsfusion.txt": (0.9, 1.0), "train_list_miech.txt": (0.0, 0.66),
            "test_list_miech.txt": (0.9, 1.0),
        }),
    (PublishedModel("cecap", _CE, "1KOUPBLQlhqmtOGBSIjLIUXHfOAppj8Y5",
                    (14.5, 37.7, 50.6, 78.5, 10)),
     PublishedModel("ttcap", _TT, "14vjfwyZi9qYTJKMEwCv6z_tHm5eqD5ih",
                    (14.8, 38.1, 51.1, 79.1, 10))),
)

MSVD = DatasetSpec(
    "MSVD",
    DatasetLayout(
        name="MSVD",
        splits={
            "dev": ("train_list.txt", "val_list.txt"),
            "official": ("train_list.txt", "test_list.txt"),
        },
        custom_paths={
            "face": ("aggregated_face_feats/face-avg.pickle",),
            "ocr": ("aggregated_ocr_feats/ocr-w2v.pickle",),
            "r2p1d.r2p1d-ig65m-kinetics.0": (
                "aggregated_r2p1d_30fps_256px_stride8_offset0_inner_stride1/"
                "r2p1d-ig65m-kinetics-avg.pickle",),
        },
        extra_files=("dict_youtube_mapping.pkl",),
        split_text_feats={"openai": {
            "dev": ("openai-caption-train.pkl", "openai-caption-val.pkl"),
            "official": ("openai-caption-train.pkl", "openai-caption-test.pkl"),
        }},
        youtube_keyed_text_feats=("openai",),
    ),
    FeatureTarball("MSVD", "MSVD", {
        "c8eba8c5291dd6bb501757ed0cc327cd22217965": "current release"}),
    SynthDefaults(token_experts=(), captions_per_video=40, video_id_prefix="vid",
                  split_fractions=_TRAIN_VAL_TEST),
    (PublishedModel("cecap", _CE, "1atl8S1d-yFjnt_M4gu602MZcqH5FEWqd",
                    (25.9, 58.3, 72.7, 93.3, 4)),
     PublishedModel("ttcap", _TT, "1D4btmyYIHW-AQLe3HBODBcAYkbBXMrEG",
                    (25.6, 57.1, 71.4, 92.9, 4))),
)

DIDEMO = DatasetSpec(
    "DiDeMo",
    DatasetLayout(
        name="DiDeMo",
        splits={
            "val": ("train_list.txt", "val_list.txt"),
            "test": ("train_list.txt", "test_list.txt"),
        },
        custom_paths={
            "audio": ("aggregated_audio_feats/vggish-audio-raw.pickle",),
            "ocr": ("aggregated_ocr_feats/ocr-feats.pkl",),
            "speech": ("aggregated_speech_feats/stt_w2v.pickle",),
            "face": ("aggregated_facefeats_25fps_256px_stride1/face-avg.pickle",),
        },
        strip_list_suffix=True,
        text_feat_overrides={"openai": "openai-feats.pkl"},
    ),
    FeatureTarball("DiDeMo", "DiDeMo", {
        "8e128309f12cf3260fe538f82578b5ad91a46bd0": "current release"}),
    SynthDefaults(token_experts=("audio", "speech"), captions_per_video=4,
                  video_id_prefix="didemo_", split_fractions=_TRAIN_VAL_TEST,
                  fuse_captions=True),
    (PublishedModel("cecap", _CE, "1PP3C_aHMeL0pkAISE5LKFcEqpFjFWFNF",
                    (19.5, 44.6, 59.0, 83.0, 7)),
     PublishedModel("ttcap", _TT, "1d4Y3vWw7vcOXjAjvxAdj8s45fs_lidOO",
                    (22.2, 49.0, 61.4, 86.4, 6))),
)

ACTIVITYNET = DatasetSpec(
    "ActivityNet",
    DatasetLayout(
        name="ActivityNet",
        splits={
            "val1": ("train_list.txt", "val_1_list.txt"),
            "val": ("train_list.txt", "val_list.txt"),
        },
        custom_paths={
            "audio": ("aggregated_audio/vggish-audio-raw.pickle",),
            "speech": ("aggregated_speech/goog_w2v-speech-raw.pickle",),
            "ocr": ("aggregated_ocr_feats/ocr-w2v.pkl",),
            "face": ("aggregated_facefeats_25fps_256px_stride1/face-avg.pickle",),
        },
        raw_captions="raw-captions-train-val_1.pkl",
        # the original has openai features for its val1 split only
        split_text_feats={"openai": {"val1": ("openai-train.pkl", "openai-val1.pkl")}},
    ),
    FeatureTarball("ActivityNet", "activity-net", {
        "2f3c7c2fe86bd6d0c6230464a940c429291a4012": "current release"}),
    SynthDefaults(token_experts=("audio", "speech"), captions_per_video=3,
                  video_id_prefix="v_",
                  split_fractions={"train_list.txt": (0.0, 0.7), "val_list.txt": (0.7, 0.85),
                                   "val_1_list.txt": (0.7, 0.85)},
                  fuse_captions=True),
    (PublishedModel("cecap", _CE, "1EbXPBhHPWBxluGbPZxss4LgKVL-EMaq-",
                    (20.0, 50.8, 67.3, 93.7, 5)),
     PublishedModel("ttcap", _TT, "1SbB6eEa341us17f7AGpMQpjw4K9Fbm42",
                    (23.8, 56.9, 73.2, 96.2, 4))),
)

#: own videos through `crosskd extract`: every video of the collection is in the expert files,
#: the captioned ones are split into train / val / test (`train` evaluates on the training
#: videos); a collection extracted without captions has no split lists.
OWN_VIDEOS = DatasetSpec(
    "own-videos",
    DatasetLayout(
        name="own-videos",
        splits={"train": ("train_list.txt", "train_list.txt"),
                "val": ("train_list.txt", "val_list.txt"),
                "test": ("train_list.txt", "test_list.txt")},
        custom_paths={
            "audio": ("aggregated_audio_feats/audio-tokens.pickle",),
            "ocr": ("aggregated_ocr_feats/ocr-tokens.pickle",),
            "speech": ("aggregated_speech_feats/speech-tokens.pickle",),
        },
        made_by="crosskd extract",
    ),
    None,
    SynthDefaults(token_experts=("audio", "speech"), captions_per_video=5,
                  video_id_prefix="video",
                  split_fractions={"train_list.txt": (0.0, 0.7), "val_list.txt": (0.7, 0.8),
                                   "test_list.txt": (0.8, 1.0)}),
)

#: every dataset, in the order the zoo and the help texts list them.
CATALOGUE: tuple[DatasetSpec, ...] = (MSRVTT, MSVD, DIDEMO, ACTIVITYNET, OWN_VIDEOS)
