#include "engine/checkpoint_writer_spm.h"

#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "sentencepiece_processor.h"
#include "sentencepiece_trainer.h"

namespace llama::spm {
namespace {

// A few KB of plain English, one sentence or short passage per line.
constexpr const char kDemoText[] = R"TXT(Once upon a time, there was a little girl named Lily who loved to play in the park.
Every morning she walked with her mother to the old oak tree near the river.
The sun was bright and warm, and the birds were singing in the tall green trees.
One day, Lily found a small red ball under a bench and asked, "Whose ball is this?"
A boy named Tom came running over. "It is mine! Thank you for finding it," he said.
They played together all afternoon, throwing the ball and laughing.
When the sky turned orange, they said goodbye and promised to meet again tomorrow.
The little dog barked at the cat, but the cat just yawned and went back to sleep.
Grandpa told stories about ships, stars, dragons and faraway islands.
You are a helpful, respectful and honest assistant. Always answer as helpfully as possible.
Please explain how a computer works in simple words.
A computer is a machine that follows instructions called programs.
It stores numbers in memory and changes them very quickly, billions of times per second.
The question was simple, but the answer took a long time to write.
What is the capital of France? The capital of France is Paris.
How many days are there in a week? There are seven days in a week.
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday and Sunday.
January, February, March, April, May, June, July, August, September, October, November, December.
One, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve.
0 1 2 3 4 5 6 7 8 9 10 20 30 100 1000 2023 3.14 42
The quick brown fox jumps over the lazy dog.
She sells sea shells by the sea shore, and the shells she sells are surely sea shells.
In the morning the farmer feeds the cows, the pigs, the sheep and the chickens.
The teacher wrote a long sentence on the board and the children copied it carefully.
It was a dark and stormy night; the rain fell in torrents, except at occasional intervals.
Water boils at one hundred degrees and freezes at zero degrees.
The train leaves the station at nine o'clock and arrives in the city before noon.
Reading books helps you learn new words and understand different people.
He opened the window, looked at the garden, and smiled at the flowers.
There were roses, tulips, daisies and sunflowers growing next to the fence.
Can you help me write a short poem about the ocean?
The ocean is wide and deep and blue; its waves come in and go out again.
Thank you very much! You're welcome. Have a nice day.
I think that the best way to solve a problem is to break it into small steps.
First, read the problem. Second, make a plan. Third, try the plan and check the result.
The scientist measured the temperature, the pressure and the speed of the wind.
Mountains are high, valleys are low, and rivers flow from the mountains to the sea.
Some animals sleep during the winter, while others travel south to find food.
The baker made bread, cakes, cookies and pies for the village festival.
Everyone was happy because the festival had music, games and delicious food.
My favorite color is green, but my brother likes purple and my sister likes yellow.
If you want to be strong, you should eat vegetables, drink water and sleep well.
The library was quiet, and the only sound was the turning of pages.
Once there was a brave knight who protected a small kingdom from a hungry giant.
The giant was not really bad; he was only lonely and wanted a friend.
So the knight invited the giant to dinner, and they became the best of friends.
Hello! How are you today? I am fine, thank you. What are you doing?
I am learning how to cook pasta with tomato sauce and fresh basil.
Be kind to others, share your toys, and always tell the truth.
The end.
)TXT";

class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) lines_.push_back(line);
    }
  }
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> lines_;
  size_t i_ = 0;
};

}  // namespace

bool TrainDemoBpe(int vocab, std::string* model, std::string* error) {
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab)},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "true"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", "4096"},
      {"num_threads", "1"},
      {"minloglevel", "2"},
  };
  LineIterator it(kDemoText);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, model);
  if (!status.ok()) {
    *error = status.ToString();
    return false;
  }
  return true;
}

int PieceCount(const std::string& path, std::string* error) {
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(path);
  if (!status.ok()) {
    *error = status.ToString();
    return -1;
  }
  return sp.GetPieceSize();
}

}  // namespace llama::spm
